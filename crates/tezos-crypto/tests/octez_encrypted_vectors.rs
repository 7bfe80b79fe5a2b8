//! Known answers for encrypted secret keys (`edesk…`, `spesk…`, `p2esk…`, `BLesk…`): keys
//! and passwords from Octez's own encrypted-key tests (src/lib_signer_backends/test/
//! test_encrypted.ml), so a key file written by octez-client opens here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tezos_crypto::{encrypted, SecretKey};

/// (encrypted key, its password, the plain key it holds).
const VECTORS: [(&str, &str, &str); 12] = [
    (
        "edesk1oGXxunJ5FTGpQ6o1xdop8VGKdT36Fj7LwWF9HLjzEqaCC4V6tdRVN1jaeJTfCHS8bYf7U2YhMK2yW6jSUy",
        "ahThie5H",
        "edsk3kMNLNdzLPbbABASDLARft8JRZ3Wpwibn8SMAb4KmuWSMJmAFd",
    ),
    (
        "edesk1s4xEifbUdUkghHHimbNUuyQ4eidDVJdc8JtPRUon758hBqZNZsQxadUDFRSRiUdLoFqBG35HAiLKafyczw",
        "ahThie5H",
        "edsk3Kqr8VHRx9kmR8Pj5qRGcmvQH34cForiMaMz1Ahhq5DkZp7FxJ",
    ),
    (
        "edesk1zY5jEs4QXrF9tXxFq1mfW9PkatdRxCKQ2Q598y5LLz65nQj4eWxefYFp8YLerya1haRdGe5NWckHDb5ApM",
        "ahThie5H",
        "edsk2mBu4w9sMGhryvvXK53dXgpcNdZWi8pJQ1QL2rAgRPrE5y12az",
    ),
    (
        "spesk2CXQHDbzrcNatRzmg83Dto6kX6BWwpP2zGs4Zks9LDsXzaX6mAYRj5ZrrdgyZQap4DS9YRRLNSpaVC2TSsk",
        "ahThie5H",
        "spsk24attf9uuQ7PUKFHxTm6E3TMqB6SPkFiMbXPBur7JNrvupW2xg",
    ),
    (
        "spesk1upiFp23osWSUTgHcx8DCVpTrMr9xtdqVQkQDWj5sFG7vqcWLDaNv9AKKcF27Nb266YfuAGF2hEbcyAxHmK",
        "ahThie5H",
        "spsk2H32XfWL7MkW58r76q6Yu5tJg77YGgVyjwq7EvLUHhn4JmAtEG",
    ),
    (
        "spesk1w7d68hzTWJusk5Xn5oz8EgDXbotDW9BXb5ksFjr8Jd94Kxnu5yKAhgRszojhMUoJ1EEt5BtPpGpkgCjELq",
        "ahThie5H",
        "spsk3KQ56REAUGc6Gn87xCRnWyPwR2Un667vegQVuU16ZcgNyLCooh",
    ),
    (
        "p2esk2JMFpR9yaSpgsaKQYLqFnv16t4gowJ4cgjj7D7iMfoaJz2vZuH7Tdi11MrX6FC2yhfs2nvy5VRxAvzH1STE",
        "ahThie5H",
        "p2sk2YQcwF5h7qgRztocEMrfizUwZaM41f4v7zWneiig2Y5AxajqYC",
    ),
    (
        "p2esk1nfobVL73mY5Y18W8Ltb3Vm6Nf5Th7trN3yA3ucyyP4AH93XfyRatkh9AxxaDtnju1EtArykjroEQHDT97k",
        "ahThie5H",
        "p2sk2XiSoQC9tvejVBDJyvkbHUq2kvcQHdJJ2wM8rii228DkjKV2b5",
    ),
    (
        "p2esk2Ge1jrVak7NhxksimzaQjRCTLx5vxUZ4Akgq3spGQLx6N41h6aKXeEYDgxN5eztnPwD6QiCHCfVAKXLPNm8",
        "ahThie5H",
        "p2sk3ZsfsEaxDNn74orv91Ruu35fomzF373aT9ForA4fDo54c47o6H",
    ),
    (
        "BLesk1ExnCaFxVcGFvKFQrPs2AADo2KpukB6bhA8SLASRzZ58uqvSNUNyzdNdya5NPgE1BAFwcN3wtyFv76r1GJ9",
        "ahThie5H",
        "BLsk1o1S8oAG76r3o3aJr1gbVhNdDnAMsdy1yMfwHLWwUHfAeyEXHV",
    ),
    (
        "BLesk1c92TTyYAbkt5Aa2g2puGZHy1M9hQVX7um7PYpxfsjbaaiYsqR2ahArH53WGSvbvzUBizgPipMyfmh8bCs5",
        "aVah7eid",
        "BLsk1ootrVQmMBgcnXDKdyBR2M5tXwZh2TRVcinBJwMhCYVDRm3K1N",
    ),
    (
        "BLesk1yLinYLYYxq947JSbwt4s94xZb6azZz8AD8myiU67mQpKA2bLxYwq8QhYTrsCdXTtLSLyYnVL5EQAuubYjJ",
        "Hihohh1n",
        "BLsk1rgztT2EBdQ2vtyXkTzgwmEjabvZri3c7tLHQtDmgH695mcWUt",
    ),
];

#[test]
fn octez_encrypted_keys_decrypt_to_their_plain_keys() {
    for (esk, password, plain) in VECTORS {
        let expected = SecretKey::from_b58check(plain).unwrap();
        let decrypted =
            encrypted::decrypt(esk, password.as_bytes()).unwrap_or_else(|e| panic!("{esk}: {e}"));
        assert_eq!(decrypted.public_key(), expected.public_key(), "{esk}");
        assert_eq!(
            decrypted.to_b58check().as_str(),
            expected.to_b58check().as_str(),
            "{esk}"
        );
    }
    // The authenticated encryption refuses any other password (one check: PBKDF2 is slow
    // on purpose).
    let [(esk, _, _), ..] = VECTORS;
    assert!(encrypted::decrypt(esk, b"not the password").is_err());
}
