//! Loading whole configuration files: ECAD Signatory's own examples, every class of error
//! with the key path it names, environment expansion, deprecated names and their warnings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use signatory_config::{
    Config, ConfigError, DriverSettings, KeyPolicyConfig, ListenAddress, ListenHost, ServerLimits,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;
use tezos_crypto::{ChainId, PublicKey, PublicKeyHash};

const BAKER: &str = "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx";
const WALLET: &str = "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv";
const TZ2: &str = "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD";
const TZ3: &str = "tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At";
const TZ4: &str = "tz4JmbuiJGyC2thisABCS59PnGr749dsP4WY";
const EDPK: &str = "edpkuhmrbunxumoiVdQuxBZUPMmwkPt7yLtY5Qnua3VJVTLWr3vXXa";
const SPPK: &str = "sppk7aqSksZan1AGXuKtCz9UBLZZ77e3ZWGpFxR7ig1Z17GneEhSSbH";

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.yaml", &no_env)
}

fn pkh(s: &str) -> PublicKeyHash {
    PublicKeyHash::from_b58check(s).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn policy<'a>(config: &'a Config, key: &str) -> &'a KeyPolicyConfig {
    config.tezos.get(&pkh(key)).unwrap()
}

/// The error's key path and message, or a panic naming what loaded instead.
fn error_at(text: &str) -> (String, String) {
    match parse(text) {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(e) => (e.key_path().unwrap_or("<none>").to_owned(), e.to_string()),
    }
}

fn warnings(config: &Config) -> Vec<String> {
    config.warnings.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------------------------------
// ECAD Signatory's own files

/// ECAD's file-based quick start (docs/localsecret.md), as published.
const ECAD_LOCAL_SECRET: &str = r#"
server:
  address: :6732
  utility_address: :9583

vaults:
  local_secret:
    driver: file
    config:
      file: /etc/secret.json

tezos:
  tz1Wk1Wdczh5BzyZ1uz2DW9xdFg9B5cFuGFm:
    log_payloads: true
    allow:
      block:
      attestation:        # Modern terminology (was "endorsement")
      preattestation:     # Modern terminology (was "preendorsement")
      attestation_with_dal: # Required for DAL participation
      generic:
        - transaction
"#;

#[test]
fn ecad_local_secret_quick_start_loads() {
    let config = parse(ECAD_LOCAL_SECRET).unwrap();
    assert_eq!(config.base_dir.to_str(), Some("/var/lib/signatory"));
    assert_eq!(
        config.server.address,
        ListenAddress::parse(":6732").unwrap()
    );
    assert_eq!(config.server.address.host, ListenHost::All);
    assert_eq!(config.server.utility_address.port, 9583);
    assert_eq!(config.server.authorized_keys, None);
    let vault = config.vaults.get("local_secret").unwrap();
    assert_eq!(vault.driver, "file");
    assert_eq!(vault.name, "local_secret");
    assert_eq!(
        vault.config.get("file").and_then(DriverSettings::as_str),
        Some("/etc/secret.json")
    );
    assert_eq!(config.watermark.driver, "file");
    assert!(config.watermark.config.is_null());
    let p = policy(&config, "tz1Wk1Wdczh5BzyZ1uz2DW9xdFg9B5cFuGFm");
    assert_eq!(
        p.allowed_requests,
        set(&[
            "attestation",
            "attestation_with_dal",
            "block",
            "generic",
            "preattestation"
        ])
    );
    assert_eq!(p.allowed_operations, set(&["transaction"]));
    assert!(p.log_payloads);
    assert!(!p.allow_proof_of_possession);
    assert_eq!(p.allowed_chains, None);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

/// The shape of ECAD's integration-test configuration: several vaults, keys of every curve,
/// `allow:` left empty, proof of possession on a tz4 key.
const ECAD_INTEGRATION: &str = r#"
server:
  address: :6732
  utility_address: :9583

watermark:
  # Default
  driver: file

vaults:
  local_secret:
    driver: file
    config:
      file: /etc/secret.json
  ledger:
    driver: ledger
    config:
      transport: tcp://speculos:9999
      keys:
        - "bip25519/0'/0'"
      close_after: 3600s
tezos:
  #alice
  tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx:
    log_payloads: true
    allow:
      generic:
        - transaction
        - reveal

  #opstest is used as is for the reveal test
  tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv:
    allow:
    log_payloads: true

  #tz2
  tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD:
    log_payloads: true
    allow:
      generic:
        - transaction
        - reveal
        - ballot:yay
        - stake

  #tz3
  tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At:

  #tz4
  tz4JmbuiJGyC2thisABCS59PnGr749dsP4WY:
    log_payloads: true
    allow:
      generic:
        - transaction
        - reveal
    allow_proof_of_possession: true
"#;

#[test]
fn ecad_integration_shape_loads() {
    let config = parse(ECAD_INTEGRATION).unwrap();
    assert_eq!(config.vault_names(), vec!["ledger", "local_secret"]);
    let ledger = config.vaults.get("ledger").unwrap();
    assert_eq!(ledger.driver, "ledger");
    assert!(ledger.config.get("keys").unwrap().is_sequence());
    assert_eq!(config.tezos.len(), 5);

    let alice = policy(&config, BAKER);
    assert_eq!(alice.allowed_requests, set(&["generic"]));
    assert_eq!(alice.allowed_operations, set(&["reveal", "transaction"]));

    // `allow:` with no value: ECAD allows nothing, and so do we, with a warning.
    let opstest = policy(&config, WALLET);
    assert_eq!(
        opstest,
        &KeyPolicyConfig {
            log_payloads: true,
            ..KeyPolicyConfig::allow_nothing()
        }
    );
    assert!(warnings(&config)
        .iter()
        .any(|w| w.contains(WALLET) && w.contains("allows no request kind")));

    let tz2 = policy(&config, TZ2);
    assert_eq!(
        tz2.allowed_operations,
        set(&["ballot:yay", "reveal", "stake", "transaction"])
    );
    // Listed with no value: the default baking policy.
    assert_eq!(
        policy(&config, TZ3).allowed_requests,
        set(&["attestation", "block", "preattestation"])
    );
    assert!(policy(&config, TZ4).allow_proof_of_possession);
    assert!(warnings(&config)
        .iter()
        .any(|w| w.contains(TZ3) && w.contains("attestation_with_dal")));
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
}

#[test]
fn a_key_listed_with_no_value_gets_block_preattestation_attestation() {
    let config = parse(&format!("tezos:\n  {BAKER}:\n  {TZ4}: ~\n")).unwrap();
    for key in [BAKER, TZ4] {
        let p = policy(&config, key);
        assert_eq!(p, &KeyPolicyConfig::listed_without_policy());
        assert_eq!(
            p.allowed_requests,
            set(&["attestation", "block", "preattestation"])
        );
        assert!(p.allowed_operations.is_empty());
        assert!(!p.log_payloads && !p.allow_proof_of_possession);
        assert_eq!(p.allowed_chains, None);
        assert_eq!(p.authorized_keys, None);
    }
    // DAL attestations are refused by that default: the tz1 key's operator is told how to
    // allow them; tz4 attestations carry DAL content under `attestation`, so not its.
    let dal: Vec<String> = warnings(&config)
        .into_iter()
        .filter(|w| w.contains("DAL"))
        .collect();
    match dal.as_slice() {
        [only] => assert!(
            only.contains(BAKER) && only.contains("attestation_with_dal:"),
            "{only}"
        ),
        _ => panic!("one warning about DAL expected: {dal:?}"),
    }
}

#[test]
fn full_policy_with_chains_and_authorized_keys() {
    let text = format!(
        r#"
base_dir: /srv/signatory
server:
  address: 127.0.0.1:6732
  utility_address: "[::1]:9583"
  authorized_keys:
    - {EDPK}
    - [{SPPK}]
watermark:
  driver: mem
vaults:
  keys: {{driver: mem, config: []}}
tezos:
  {BAKER}:
    allowed_chains: [NetXdQprcVkpaWU, NetXnHfVqm9iesp]
    authorized_keys: {EDPK}
    allow:
      block:
      preattestation:
      attestation:
      pack:
"#
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.base_dir.to_str(), Some("/srv/signatory"));
    assert_eq!(
        config.server.address.socket_addr(),
        Some("127.0.0.1:6732".parse().unwrap())
    );
    assert_eq!(
        config.server.utility_address.socket_addr(),
        Some("[::1]:9583".parse().unwrap())
    );
    let server_keys = config.server.authorized_keys.clone().unwrap();
    assert_eq!(
        server_keys,
        vec![
            PublicKey::from_b58check(EDPK).unwrap(),
            PublicKey::from_b58check(SPPK).unwrap()
        ]
    );
    assert_eq!(
        config.server.authorized_key_hashes().unwrap(),
        [pkh(WALLET), pkh(TZ2)].into_iter().collect()
    );
    assert_eq!(config.watermark.driver, "mem");
    let p = policy(&config, BAKER);
    assert_eq!(
        p.allowed_chains,
        Some(
            [
                ChainId::from_b58check("NetXdQprcVkpaWU").unwrap(),
                ChainId::from_b58check("NetXnHfVqm9iesp").unwrap()
            ]
            .into_iter()
            .collect()
        )
    );
    assert_eq!(
        p.authorized_key_hashes(),
        Some([pkh(WALLET)].into_iter().collect())
    );
    assert_eq!(
        p.allowed_requests,
        set(&["attestation", "block", "pack", "preattestation"])
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn an_empty_file_is_all_defaults_with_warnings() {
    let config = parse("# nothing yet\n").unwrap();
    assert_eq!(config.base_dir.to_str(), Some("/var/lib/signatory"));
    assert_eq!(config.server.address.to_string(), ":6732");
    assert_eq!(config.server.utility_address.to_string(), ":9583");
    assert_eq!(config.watermark.driver, "file");
    assert!(config.tezos.is_empty() && config.vaults.is_empty());
    let w = warnings(&config);
    assert!(w.iter().any(|w| w.contains("no keys are listed")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("no vaults")), "{w:?}");
}

// ---------------------------------------------------------------------------------------
// Deprecated names

#[test]
fn legacy_request_and_operation_names_are_renamed_with_warnings() {
    // ECAD's own test file: `endorsement` as a request kind and inside `generic`.
    let text = r#"
base_dir: /tmp/s
tezos:
  tz3MhmeqpudUqEX8PYTbNDF3CVcnnjNQoo8N:
    log_payloads: true
    allow:
      generic:
        - transaction
        - endorsement
        - double_endorsement_evidence
      block:
      endorsement:
      preendorsement:
"#;
    let config = parse(text).unwrap();
    let p = policy(&config, "tz3MhmeqpudUqEX8PYTbNDF3CVcnnjNQoo8N");
    assert_eq!(
        p.allowed_requests,
        set(&["attestation", "block", "generic", "preattestation"])
    );
    assert_eq!(
        p.allowed_operations,
        set(&[
            "attestation",
            "double_consensus_operation_evidence",
            "transaction"
        ])
    );
    let w = warnings(&config);
    let key = "tezos.tz3MhmeqpudUqEX8PYTbNDF3CVcnnjNQoo8N";
    for expected in [
        format!("`{key}.allow.endorsement`: `endorsement` is a deprecated name; write `attestation`"),
        format!("`{key}.allow.preendorsement`: `preendorsement` is a deprecated name; write `preattestation`"),
        format!("`{key}.allow.generic[1]`: `endorsement` is a deprecated name; write `attestation`"),
        format!("`{key}.allow.generic[2]`: `double_endorsement_evidence` is a deprecated name; write `double_consensus_operation_evidence`"),
    ] {
        assert!(w.contains(&expected), "missing {expected:?} in {w:?}");
    }
}

#[test]
fn allowed_operations_and_allowed_kinds_still_work_with_a_warning() {
    let text = format!(
        r#"
tezos:
  {BAKER}:
    allowed_operations: [generic, block, endorsement]
    allowed_kinds: [transaction, reveal]
"#
    );
    let config = parse(&text).unwrap();
    let p = policy(&config, BAKER);
    assert_eq!(
        p.allowed_requests,
        set(&["attestation", "block", "generic"])
    );
    assert_eq!(p.allowed_operations, set(&["reveal", "transaction"]));
    let w = warnings(&config);
    assert!(
        w.iter().any(|w| w.contains("deprecated")
            && w.contains("allow: {attestation: [], block: [], generic: [reveal, transaction]}")),
        "{w:?}"
    );
    // The suggested replacement loads to the same policy.
    let modern = parse(&format!(
        "tezos:\n  {BAKER}:\n    allow: {{attestation: [], block: [], generic: [reveal, transaction]}}\n"
    ))
    .unwrap();
    assert_eq!(policy(&modern, BAKER), p);
    assert!(modern
        .warnings
        .iter()
        .all(|w| !w.message.contains("deprecated")));
}

#[test]
fn legacy_keys_next_to_allow_are_ignored_with_a_warning() {
    let text = format!(
        "tezos:\n  {BAKER}:\n    allowed_operations: [generic]\n    allowed_kinds: [transaction]\n    allow:\n      block:\n"
    );
    let config = parse(&text).unwrap();
    let p = policy(&config, BAKER);
    assert_eq!(p.allowed_requests, set(&["block"]));
    assert!(p.allowed_operations.is_empty());
    assert!(warnings(&config)
        .iter()
        .any(|w| w.contains("are ignored because `allow` is set")));
}

#[test]
fn allowed_kinds_without_generic_warns_that_it_does_nothing() {
    let text = format!(
        "tezos:\n  {BAKER}:\n    allowed_operations: [block]\n    allowed_kinds: [transaction]\n"
    );
    let config = parse(&text).unwrap();
    assert!(warnings(&config)
        .iter()
        .any(|w| w.contains("allowed_kinds`: has no effect")));
}

#[test]
fn questionable_but_valid_policies_warn() {
    let text = format!(
        r#"
tezos:
  {BAKER}:
    allow_proof_of_possession: true
    allowed_chains: []
    allow:
      generic:
      block: [transaction]
  {TZ4}:
    allow:
      attestation_with_dal:
"#
    );
    let config = parse(&text).unwrap();
    let p = policy(&config, BAKER);
    // Proofs of possession are a tz4 thing: refused for tz1 whatever the file says.
    assert!(!p.allow_proof_of_possession);
    assert_eq!(p.allowed_chains, Some(BTreeSet::new()));
    assert_eq!(p.allowed_requests, set(&["block", "generic"]));
    assert!(p.allowed_operations.is_empty());
    let w = warnings(&config).join("\n");
    for expected in [
        "allow_proof_of_possession`: is ignored",
        "allowed_chains`: is an empty list",
        "allow.generic`: lists no operation kinds",
        "allow.block`: only `generic` takes a list",
        "allow.attestation_with_dal`: has no effect for a tz4 key",
    ] {
        assert!(w.contains(expected), "missing {expected:?} in\n{w}");
    }
}

// ---------------------------------------------------------------------------------------
// Environment expansion

#[test]
fn environment_variables_expand_before_parsing() {
    let text = r#"
base_dir: $HOME/.signatory
server:
  address: ${LISTEN:-127.0.0.1}:${PORT}
vaults:
  local:
    driver: file
    config:
      file: ${SECRETS}
tezos:
  ${BAKER_KEY}:
"#;
    let env = |name: &str| match name {
        "HOME" => Some("/home/baker".to_owned()),
        "PORT" => Some("7000".to_owned()),
        "SECRETS" => Some("/run/keys/secret.json".to_owned()),
        "BAKER_KEY" => Some(BAKER.to_owned()),
        _ => None,
    };
    let config = Config::parse(text, "env.yaml", &env).unwrap();
    assert_eq!(config.base_dir.to_str(), Some("/home/baker/.signatory"));
    assert_eq!(config.server.address.to_string(), "127.0.0.1:7000");
    assert_eq!(
        config
            .vaults
            .get("local")
            .unwrap()
            .config
            .get("file")
            .and_then(DriverSettings::as_str),
        Some("/run/keys/secret.json")
    );
    assert!(config.tezos.contains_key(&pkh(BAKER)));
}

/// A variable's value is text inside one string: a newline in it adds no setting, a ` #`
/// in it cuts nothing off.
#[test]
fn a_variable_cannot_inject_configuration() {
    let text = "vaults:\n  local:\n    driver: file\n    config:\n      file: ${KEYFILE}\n";
    let vault_file = |keyfile: &str| {
        let keyfile = keyfile.to_owned();
        let env = move |name: &str| (name == "KEYFILE").then(|| keyfile.clone());
        let config = Config::parse(text, "env.yaml", &env).unwrap();
        let file = config
            .vaults
            .get("local")
            .unwrap()
            .config
            .get("file")
            .cloned();
        (config, file)
    };
    let (config, file) = vault_file("/k.json\nserver:\n  address: 0.0.0.0:1");
    assert_eq!(config.server.address.to_string(), ":6732");
    assert_eq!(
        file.as_ref().and_then(DriverSettings::as_str),
        Some("/k.json\nserver:\n  address: 0.0.0.0:1")
    );
    let (_, file) = vault_file("/k.json #x");
    assert_eq!(
        file.as_ref().and_then(DriverSettings::as_str),
        Some("/k.json #x")
    );
}

/// An expanded value stays a string, and numeric settings still take it.
#[test]
fn numbers_from_variables_still_work() {
    let env = |name: &str| match name {
        "MAX" => Some("64".to_owned()),
        "BODY" => Some("100000".to_owned()),
        _ => None,
    };
    let config = Config::parse(
        "server:\n  limits:\n    max_connections: ${MAX}\n    max_body_bytes: $BODY\n",
        "env.yaml",
        &env,
    )
    .unwrap();
    assert_eq!(config.server.limits.max_connections, Some(64));
    assert_eq!(config.server.limits.max_body_bytes, Some(100_000));
    // A value that is not digits is refused; the whole value is not re-read as YAML.
    let env = |name: &str| (name == "MAX").then(|| "64\nmax_body_bytes: 1".to_owned());
    let err = Config::parse(
        "server:\n  limits:\n    max_connections: ${MAX}\n",
        "env.yaml",
        &env,
    )
    .unwrap_err();
    assert_eq!(
        err.key_path(),
        Some("server.limits.max_connections"),
        "{err}"
    );
}

/// Secrets will come from the environment: no error shows an expanded value.
#[test]
fn errors_never_show_a_value_from_the_environment() {
    let secret = "hunter2-very-secret";
    let env = |name: &str| (name == "TOKEN").then(|| secret.to_owned());
    for text in [
        "server:\n  address: ${TOKEN}\n",
        "server:\n  limits:\n    max_connections: ${TOKEN}\n",
        "server:\n  authorized_keys: [${TOKEN}]\n",
        "tezos:\n  ${TOKEN}:\n",
        "server:\n  allow_list_known_keys: ${TOKEN}\n",
        "base_dir: [${TOKEN}]\n",
    ] {
        let err = Config::parse(text, "env.yaml", &env)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{text}: {err}");
        assert!(err.contains("env.yaml"), "{text}: {err}");
    }
}

#[test]
fn an_empty_variable_is_an_empty_address() {
    let env = |name: &str| (name == "ADDR").then(String::new);
    let err = Config::parse("server:\n  address: ${ADDR}\n", "env.yaml", &env).unwrap_err();
    assert_eq!(err.key_path(), Some("server.address"));
    assert!(err.to_string().contains("is empty"), "{err}");
}

#[test]
fn an_unset_variable_is_an_error_naming_it_and_its_line() {
    let err = Config::parse(
        "server:\n  address: :6732\nbase_dir: ${SIGNATORY_DATA}\n",
        "env.yaml",
        &no_env,
    )
    .unwrap_err();
    assert!(matches!(
        &err,
        ConfigError::UnsetVariable { line: 3, variable, .. } if variable == "SIGNATORY_DATA"
    ));
    let message = err.to_string();
    assert!(
        message.starts_with("env.yaml, line 3: environment variable `SIGNATORY_DATA` is not set"),
        "{message}"
    );
    let err = parse("base_dir: ${1BAD}\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::BadSubstitution { line: 1, .. }),
        "{err}"
    );
}

#[test]
fn an_empty_variable_cannot_empty_base_dir() {
    let env = |name: &str| (name == "DIR").then(String::new);
    let err = Config::parse("base_dir: ${DIR}\n", "env.yaml", &env).unwrap_err();
    assert_eq!(err.key_path(), Some("base_dir"));
    assert!(err.to_string().contains("is empty"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Errors: every class, with the path it names

#[test]
fn a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.yaml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn errors_from_a_file_name_the_file_and_key_path() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "tezos:\n  {BAKER}:\n    allow:\n      generic: [transaction, reveal, teleport]"
    )
    .unwrap();
    let err = Config::load(file.path()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: ", file.path().display())),
        "{message}"
    );
    assert_eq!(
        err.key_path(),
        Some(format!("tezos.{BAKER}.allow.generic[2]").as_str())
    );
    assert!(
        message.contains("unknown operation kind `teleport`"),
        "{message}"
    );
    assert!(
        message.contains("transaction"),
        "the message lists the known kinds: {message}"
    );

    // And a good file loads, with its path as origin.
    let mut good = tempfile::NamedTempFile::new().unwrap();
    writeln!(good, "tezos:\n  {BAKER}:").unwrap();
    let config = Config::load(good.path()).unwrap();
    assert_eq!(config.origin, good.path().display().to_string());
}

#[test]
fn yaml_syntax_errors_are_reported() {
    let err = parse("server:\n  address: :6732\n   utility_address: x\n").unwrap_err();
    assert!(matches!(err, ConfigError::Schema { .. }), "{err}");
    assert!(err.to_string().contains("line"), "{err}");
    assert!(parse("tezos: [unclosed\n").is_err());
}

#[test]
fn unknown_keys_fail_with_their_path() {
    let cases = [
        ("adress: :6732\n", "adress"),
        ("server:\n  adress: :6732\n", "server.adress"),
        (
            "vaults:\n  v:\n    driver: file\n    settings: {}\n",
            "vaults.v.settings",
        ),
        ("watermark:\n  driver: file\n  dir: /x\n", "watermark.dir"),
    ];
    for (text, path) in cases {
        let (at, message) = error_at(text);
        assert_eq!(at, path, "{message}");
        assert!(message.contains("unknown field"), "{message}");
        assert!(message.contains("expected"), "{message}");
    }
    let (at, message) = error_at(&format!("tezos:\n  {BAKER}:\n    log_payload: true\n"));
    assert_eq!(at, format!("tezos.{BAKER}.log_payload"));
    assert!(
        message.contains("log_payloads"),
        "suggests the known keys: {message}"
    );
}

/// ECAD Signatory's YAML library reads `yes`/`no`, `on`/`off` into boolean settings, so
/// files written for it may use them.
#[test]
fn yaml_1_1_booleans_are_read_as_ecad_reads_them() {
    for (word, value) in [
        ("yes", true),
        ("On", true),
        ("Y", true),
        ("NO", false),
        ("off", false),
    ] {
        let config = parse(&format!(
            "tezos:\n  {BAKER}:\n    log_payloads: {word}\n  {TZ4}:\n    \
             allow_proof_of_possession: {word}\n"
        ))
        .unwrap();
        assert_eq!(policy(&config, BAKER).log_payloads, value, "{word}");
        assert_eq!(
            policy(&config, TZ4).allow_proof_of_possession,
            value,
            "{word}"
        );
    }
    // Any other word is a string where a boolean belongs.
    let (at, message) = error_at(&format!("tezos:\n  {BAKER}:\n    log_payloads: 'maybe'\n"));
    assert_eq!(at, format!("tezos.{BAKER}.log_payloads"), "{message}");
}

#[test]
fn wrong_types_fail_with_their_path() {
    let cases = [
        (
            format!("tezos:\n  {BAKER}:\n    log_payloads: maybe\n"),
            format!("tezos.{BAKER}.log_payloads"),
            "boolean",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    allow:\n      generic: transaction\n"),
            format!("tezos.{BAKER}.allow.generic"),
            "sequence",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    allow:\n      generic: [reveal, {{a: 1}}]\n"),
            format!("tezos.{BAKER}.allow.generic[1]"),
            "string",
        ),
        (
            format!("tezos:\n  {BAKER}: [block]\n"),
            format!("tezos.{BAKER}"),
            "key policy",
        ),
        ("server: [a]\n".to_owned(), "server".to_owned(), "mapping"),
        ("[1, 2]\n".to_owned(), "".to_owned(), "mapping"),
    ];
    for (text, path, expected) in cases {
        let (at, message) = match parse(&text) {
            Ok(c) => panic!("loaded {c:?}"),
            Err(e) => (e.key_path().unwrap_or("<none>").to_owned(), e.to_string()),
        };
        let at = if at == "." { String::new() } else { at };
        assert_eq!(at, path, "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn a_key_or_vault_given_twice_is_refused() {
    let (at, message) = error_at(&format!(
        "tezos:\n  {BAKER}:\n  {WALLET}:\n  {BAKER}:\n    log_payloads: true\n"
    ));
    assert_eq!(at, "tezos");
    assert!(
        message.contains(&format!("`{BAKER}` is given twice")),
        "{message}"
    );
    let (at, message) = error_at("vaults:\n  a: {driver: file}\n  a: {driver: mem}\n");
    assert_eq!(at, "vaults");
    assert!(message.contains("given twice"), "{message}");
    let (at, _) = error_at(&format!(
        "tezos:\n  {BAKER}:\n    allow:\n      block:\n      block:\n"
    ));
    assert_eq!(at, format!("tezos.{BAKER}.allow"));
}

#[test]
fn bad_values_fail_with_their_path_and_what_was_expected() {
    let bad_checksum = "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSy";
    let cases: Vec<(String, String, &str)> = vec![
        (format!("tezos:\n  {bad_checksum}:\n"), format!("tezos.{bad_checksum}"), "not a public key hash"),
        (format!("tezos:\n  {EDPK}:\n"), format!("tezos.{EDPK}"), "expected tz1…, tz2…, tz3… or tz4…"),
        (
            format!("tezos:\n  {BAKER}:\n    allowed_chains: [NetXdQprcVkpaWU, NetXbogus]\n"),
            format!("tezos.{BAKER}.allowed_chains[1]"),
            "not a chain id",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    allow:\n      blocks:\n"),
            format!("tezos.{BAKER}.allow.blocks"),
            "unknown request kind `blocks`; expected one of attestation, attestation_with_dal, block, generic, pack, preattestation",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    allow:\n      generic: [reveal, transaction, ballot:maybe]\n"),
            format!("tezos.{BAKER}.allow.generic[2]"),
            "expected ballot:yay, ballot:nay or ballot:pass",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    allowed_operations: [block, signing]\n"),
            format!("tezos.{BAKER}.allowed_operations[1]"),
            "unknown request kind `signing`",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    allowed_operations: [generic]\n    allowed_kinds: [transfer]\n"),
            format!("tezos.{BAKER}.allowed_kinds[0]"),
            "unknown operation kind `transfer`",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    authorized_keys: [{EDPK}, {BAKER}]\n"),
            format!("tezos.{BAKER}.authorized_keys[1]"),
            "is not a public key",
        ),
        (
            format!("tezos:\n  {BAKER}:\n    authorized_keys: {{a: b}}\n"),
            format!("tezos.{BAKER}.authorized_keys"),
            "expected a public key",
        ),
        ("server:\n  authorized_keys: []\n".to_owned(), "server.authorized_keys".to_owned(), "empty list"),
        ("server:\n  address: 6732\n".to_owned(), "server.address".to_owned(), "has no port"),
        ("server:\n  address: localhost:99999\n".to_owned(), "server.address".to_owned(), "not a port number"),
        ("server:\n  utility_address: not_a_host:1\n".to_owned(), "server.utility_address".to_owned(), "not an IP address or host name"),
        ("server:\n  address: :7000\n  utility_address: :7000\n".to_owned(), "server.utility_address".to_owned(), "same as `server.address`"),
        ("vaults:\n  local:\n".to_owned(), "vaults.local".to_owned(), "has no settings"),
        ("vaults:\n  local:\n    config: {file: x}\n".to_owned(), "vaults.local.driver".to_owned(), "is missing"),
        ("watermark:\n  config: {}\n".to_owned(), "watermark.driver".to_owned(), "is missing"),
        ("base_dir: ''\n".to_owned(), "base_dir".to_owned(), "is empty"),
        ("base_dir:\n".to_owned(), "base_dir".to_owned(), "is empty"),
        ("server:\n  address:\n".to_owned(), "server.address".to_owned(), "is empty"),
    ];
    for (text, path, expected) in cases {
        let (at, message) = error_at(&text);
        assert_eq!(at, path, "{message}");
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message}"
        );
        assert!(message.starts_with("test.yaml: "), "{message}");
    }
}

#[test]
fn features_this_signer_does_not_have_are_refused_not_ignored() {
    // Ignoring any of these would sign what the operator meant to restrict.
    let cases = [
        (
            "server:\n  jwt:\n    users:\n      u:\n        password: p\n".to_owned(),
            "server.jwt".to_owned(),
        ),
        (
            "policy_hook:\n  address: http://hook\n".to_owned(),
            "policy_hook".to_owned(),
        ),
        (
            format!("tezos:\n  {BAKER}:\n    jwt_users: [u]\n"),
            format!("tezos.{BAKER}.jwt_users"),
        ),
    ];
    for (text, path) in cases {
        let (at, message) = error_at(&text);
        assert_eq!(at, path, "{message}");
        assert!(message.contains("not supported"), "{message}");
        assert!(!message.contains("password: p"), "{message}");
    }
}

#[test]
fn driver_settings_are_redacted_in_debug_output() {
    let config = parse(
        "vaults:\n  yubi:\n    driver: yubihsm\n    config:\n      address: localhost:12345\n      password: hunter2\nwatermark:\n  driver: postgres\n  config: postgres://u:hunter3@db/w\n",
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("hunter3"),
        "{debug}"
    );
    assert!(debug.contains("address, password"), "{debug}");
    assert!(
        debug.contains("yubihsm") && debug.contains("postgres"),
        "{debug}"
    );
    // The values are still there for the driver.
    assert_eq!(
        config
            .vaults
            .get("yubi")
            .unwrap()
            .config
            .get("password")
            .and_then(DriverSettings::as_str),
        Some("hunter2")
    );
}

#[test]
fn base_path_is_normalised_and_checked() {
    let root = parse("server:\n  address: :6732\n").unwrap();
    assert_eq!(root.server.base_path, "");
    let with = parse("server:\n  base_path: /signer/\n").unwrap();
    assert_eq!(with.server.base_path, "/signer");
    let (path, message) = error_at("server:\n  base_path: signer\n");
    assert_eq!(path, "server.base_path");
    assert!(message.contains("/signer"), "{message}");
}

#[test]
fn known_keys_listing_is_off_unless_asked_for() {
    let config = parse("server:\n  address: :6732\n").unwrap();
    assert!(!config.server.allow_list_known_keys);
    let config = parse("server:\n  allow_list_known_keys: yes\n").unwrap();
    assert!(config.server.allow_list_known_keys);
}

#[test]
fn server_limits_are_read_with_go_durations() {
    let config = parse(
        "server:\n  limits:\n    max_body_bytes: 100000\n    max_connections: 64\n    \
         request_timeout: 1m30s\n    header_read_timeout: 2s\n    write_timeout: 500ms\n",
    )
    .unwrap();
    let limits = &config.server.limits;
    assert_eq!(limits.max_body_bytes, Some(100_000));
    assert_eq!(limits.max_connections, Some(64));
    assert_eq!(limits.request_timeout, Some(Duration::from_secs(90)));
    assert_eq!(limits.header_read_timeout, Some(Duration::from_secs(2)));
    assert_eq!(limits.write_timeout, Some(Duration::from_millis(500)));
    assert!(config
        .warnings
        .iter()
        .all(|w| !w.key_path.contains("limits")));
    // Absent: every default is the server's.
    let config = parse("server:\n  address: :6732\n").unwrap();
    assert_eq!(config.server.limits, ServerLimits::default());
}

#[test]
fn bad_server_limits_name_their_path() {
    for (text, path, expected) in [
        (
            "max_connections: 0",
            "server.limits.max_connections",
            "at least 1",
        ),
        (
            "max_connections: 99999999999",
            "server.limits.max_connections",
            "more than",
        ),
        (
            "max_body_bytes: 0",
            "server.limits.max_body_bytes",
            "at least 1",
        ),
        (
            "request_timeout: 30",
            "server.limits.request_timeout",
            "like `30s`",
        ),
        (
            "write_timeout: 0s",
            "server.limits.write_timeout",
            "at least 1ms",
        ),
        (
            "header_read_timeout: soon",
            "server.limits.header_read_timeout",
            "like `30s`",
        ),
        (
            "max_body_bytes: -1",
            "server.limits.max_body_bytes",
            "expected u64",
        ),
        ("body_limit: 1", "server.limits.body_limit", "unknown field"),
    ] {
        let (at, message) = error_at(&format!("server:\n  limits:\n    {text}\n"));
        assert_eq!(at, path, "{message}");
        assert!(message.contains(expected), "{text}: {message}");
    }
    // Below the size of the largest operation: accepted, with a warning that says so.
    let config = parse("server:\n  limits:\n    max_body_bytes: 4096\n").unwrap();
    assert!(warnings(&config)
        .iter()
        .any(|w| w.contains("server.limits.max_body_bytes") && w.contains("413")));
}

/// Many keys listed with no value: one warning about DAL, not one per key.
#[test]
fn the_dal_warning_for_many_default_policies_is_one_line() {
    let config = parse(&format!(
        "tezos:\n  {BAKER}:\n  {WALLET}:\n  {TZ2}:\n  {TZ3}: ~\n  {TZ4}:\n"
    ))
    .unwrap();
    let dal: Vec<String> = warnings(&config)
        .into_iter()
        .filter(|w| w.contains("DAL"))
        .collect();
    assert_eq!(dal.len(), 1, "{dal:?}");
    assert!(
        dal.iter()
            .all(|w| w.contains("and 2 more keys") && !w.contains(TZ4)),
        "{dal:?}"
    );
}

/// Octez clients authenticate only when `GET /authorized_keys` names a key of theirs; a
/// key that names its clients beside keys open to all, without a global list, warns.
#[test]
fn per_key_clients_without_a_global_list_warn_when_other_keys_are_open() {
    let mixed = parse(&format!(
        "tezos:\n  {BAKER}:\n    authorized_keys: {EDPK}\n  {WALLET}:\n"
    ))
    .unwrap();
    let found: Vec<String> = warnings(&mixed)
        .into_iter()
        .filter(|w| w.contains("server.authorized_keys"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found.iter().all(|w| w.contains(BAKER) && w.contains("401")),
        "{found:?}"
    );
    // Every key names its clients, or a global list exists: nothing to warn about.
    for text in [
        format!("tezos:\n  {BAKER}:\n    authorized_keys: {EDPK}\n"),
        format!(
            "server:\n  authorized_keys: {SPPK}\ntezos:\n  {BAKER}:\n    authorized_keys: \
             {EDPK}\n  {WALLET}:\n"
        ),
    ] {
        let config = parse(&text).unwrap();
        assert!(
            warnings(&config).iter().all(|w| !w.contains("401")),
            "{:?}",
            config.warnings
        );
    }
}

/// ECAD's YAML library applies merge keys; files that share one policy between keys with
/// `<<: *anchor` load the same here.
#[test]
fn yaml_merge_keys_share_a_policy() {
    let text = format!(
        "tezos:\n  {BAKER}: &consensus\n    allow:\n      block:\n      attestation:\n    \
         allowed_chains: [NetXdQprcVkpaWU]\n  {TZ3}:\n    <<: *consensus\n    log_payloads: true\n  \
         {TZ2}:\n    <<: [*consensus]\n    allowed_chains: [NetXnHfVqm9iesp]\n"
    );
    let config = parse(&text).unwrap();
    let baker = policy(&config, BAKER);
    let tz3 = policy(&config, TZ3);
    assert_eq!(tz3.allowed_requests, baker.allowed_requests);
    assert_eq!(tz3.allowed_chains, baker.allowed_chains);
    assert!(tz3.log_payloads && !baker.log_payloads);
    // A key written beside the merge wins over the merged one.
    let tz2 = policy(&config, TZ2);
    assert_eq!(tz2.allowed_requests, set(&["attestation", "block"]));
    assert_ne!(tz2.allowed_chains, baker.allowed_chains);
    // A key given twice is still refused in a file that uses merge keys.
    let twice = format!("{text}  {BAKER}:\n    log_payloads: true\n");
    let (at, message) = error_at(&twice);
    assert!(
        message.contains("twice") || message.contains("duplicate"),
        "{at}: {message}"
    );
    // A merge of something that is not a mapping names the problem.
    let (_, message) = error_at(&format!("tezos:\n  {BAKER}:\n    <<: 3\n"));
    assert!(message.contains("merge"), "{message}");
}

#[test]
fn octez_socket_listeners_are_off_unless_set() {
    let config = parse("server:\n  address: :6732\n").unwrap();
    assert_eq!(config.server.tcp_address, None);
    assert_eq!(config.server.unix_socket, None);
    let config = parse(
        "server:\n  tcp_address: 127.0.0.1:7732\n  unix_socket: /run/signatory/signer.sock\n",
    )
    .unwrap();
    assert_eq!(
        config.server.tcp_address.map(|a| a.to_string()),
        Some("127.0.0.1:7732".to_owned())
    );
    assert_eq!(
        config.server.unix_socket,
        Some(std::path::PathBuf::from("/run/signatory/signer.sock"))
    );
}

#[test]
fn bad_octez_socket_listeners_name_their_path() {
    for (text, path, expected) in [
        ("tcp_address: 7732", "server.tcp_address", "has no port"),
        ("tcp_address:", "server.tcp_address", "is empty"),
        ("tcp_address: :6732", "server.tcp_address", "already used"),
        (
            "unix_socket: signer.sock",
            "server.unix_socket",
            "not an absolute path",
        ),
        ("unix_socket:", "server.unix_socket", "is empty"),
    ] {
        let (at, message) = error_at(&format!("server:\n  {text}\n"));
        assert_eq!(at, path, "{text}");
        assert!(message.contains(expected), "{text}: {message}");
    }
}
