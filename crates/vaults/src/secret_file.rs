//! The secret key file of octez-client and ECAD Signatory's `file` vault: a JSON list of
//! `{"name": "<alias>", "value": "unencrypted:<edsk…>" | "encrypted:<edesk…>"}`.
//! octez-client also stores other kinds of keys there (`ledger://…`, `http://…` remote
//! signers); those are recognised and left alone.

use crate::sealed::{SealHeader, SealedBy, FORMAT};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::io::Write;
use zeroize::Zeroizing;

/// One entry, its value held in memory that is wiped on drop.
#[derive(Deserialize)]
pub(crate) struct Entry {
    pub name: String,
    pub value: SecretText,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("value", &"REDACTED")
            .finish()
    }
}

/// A string read straight from the input into a wiped-on-drop buffer.
pub(crate) struct SecretText(pub Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = SecretText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SecretText, E> {
                Ok(SecretText(Zeroizing::new(s.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// What an entry's value holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stored<'a> {
    /// `unencrypted:edsk…`, or a bare secret key.
    Plain(&'a str),
    /// `encrypted:edesk…`, or a bare encrypted key.
    Encrypted(&'a str),
    /// `sealed:<hex>`: under the data key of a sealed key file ([`crate::sealed`]).
    Sealed(&'a str),
    /// Another kind of key (`ledger`, `http`, `remote` …): not ours to load.
    Elsewhere(&'a str),
}

pub(crate) fn classify(value: &str) -> Stored<'_> {
    match value.split_once(':') {
        // `aggregate_*`: how Octez stored BLS (tz4) keys before they had the plain schemes;
        // Octez still reads them.
        Some(("unencrypted" | "aggregate_unencrypted", key)) => Stored::Plain(key),
        Some(("encrypted" | "aggregate_encrypted", key)) => Stored::Encrypted(key),
        Some(("sealed", sealed)) => Stored::Sealed(sealed),
        Some((scheme, _)) => Stored::Elsewhere(scheme),
        None if tezos_crypto::encrypted::is_encrypted(value) => Stored::Encrypted(value),
        None => Stored::Plain(value),
    }
}

/// A key file: octez-client's list of entries, or a sealed key file (its header, then
/// its entries).
#[derive(Debug)]
pub(crate) struct KeyFile {
    pub sealed: Option<SealHeader>,
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedFile {
    signatory_sealed_key_file: u32,
    sealed_by: SealedBy,
    data_key: String,
    keys: Vec<Entry>,
}

/// Parse the file: a JSON list is octez-client's format, a JSON object a sealed key file.
/// The error message names the position and never echoes content.
pub(crate) fn parse(bytes: &[u8]) -> Result<KeyFile, String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return parse_json(bytes, "a JSON list of {\"name\": \"<alias>\", \"value\": \"unencrypted:<secret key>\"} entries")
            .map(|entries| KeyFile {
                sealed: None,
                entries,
            });
    }
    let file: SealedFile = parse_json(
        bytes,
        "a sealed key file: {\"signatory_sealed_key_file\": 1, \"sealed_by\": …, \"data_key\": …, \"keys\": […]}",
    )?;
    if file.signatory_sealed_key_file != FORMAT {
        return Err(format!(
            "a sealed key file of format {}; this signer reads format {FORMAT}",
            file.signatory_sealed_key_file
        ));
    }
    Ok(KeyFile {
        sealed: Some(SealHeader {
            sealed_by: file.sealed_by,
            data_key: file.data_key,
        }),
        entries: file.keys,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "invalid JSON"
            }
            _ => "unexpected content",
        };
        format!(
            "{what} at line {} column {}; expected {expected}",
            e.line(),
            e.column()
        )
    })
}

/// The bytes of `file`, built in one buffer that is wiped on drop.
pub(crate) fn serialize_file(file: &KeyFile) -> Zeroizing<Vec<u8>> {
    let Some(header) = &file.sealed else {
        return serialize(&file.entries);
    };
    let entries = serialize(&file.entries);
    let mut out = Zeroizing::new(Vec::with_capacity(entries.len() + 512));
    let buf: &mut Vec<u8> = &mut out;
    buf.extend_from_slice(
        format!("{{\n\"signatory_sealed_key_file\": {FORMAT},\n\"sealed_by\": ").as_bytes(),
    );
    let _ = serde_json::to_writer(&mut *buf, &header.sealed_by);
    buf.extend_from_slice(b",\n\"data_key\": ");
    let _ = serde_json::to_writer(&mut *buf, &header.data_key);
    buf.extend_from_slice(b",\n\"keys\": ");
    buf.extend_from_slice(&entries);
    buf.extend_from_slice(b"}\n");
    out
}

/// The file's bytes for `entries`, built in one buffer that is wiped on drop.
pub(crate) fn serialize(entries: &[Entry]) -> Zeroizing<Vec<u8>> {
    // Room for every entry up front, so the buffer never reallocates and leaves
    // unwiped copies behind.
    let capacity = entries
        .iter()
        .map(|e| 2 * (e.name.len() + e.value.0.len()) + 64)
        .sum::<usize>()
        + 8;
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    let buf: &mut Vec<u8> = &mut out;
    buf.extend_from_slice(b"[");
    for (i, entry) in entries.iter().enumerate() {
        buf.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        buf.extend_from_slice(b"  { \"name\": ");
        // Writing JSON strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, &entry.name);
        buf.extend_from_slice(b",\n    \"value\": ");
        let _ = serde_json::to_writer(&mut *buf, entry.value.0.as_str());
        buf.extend_from_slice(b" }");
    }
    let _ = buf.write_all(if entries.is_empty() { b"]\n" } else { b"\n]\n" });
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn octez_client_files_parse_and_round_trip() {
        let text = br#"[ { "name": "baker", "value": "unencrypted:edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh" },
  { "name": "ledger_key", "value": "ledger://prefer-kid/ed25519/0h/1h" },
  { "name": "remote", "value": "http://localhost:6732/tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx" },
  { "name": "enc", "value": "encrypted:p2esk2TFqgNcoT4u99ut5doGTUFNwo9x4nNvkpM6YMLqXrt4SbFdQnqLM3hoAXLMB2uZYazj6LZGvcoYzk16H6Et" } ]"#;
        let entries = parse(text).unwrap().entries;
        let kinds: Vec<Stored<'_>> = entries.iter().map(|e| classify(&e.value.0)).collect();
        assert_eq!(
            kinds,
            vec![
                Stored::Plain("edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh"),
                Stored::Elsewhere("ledger"),
                Stored::Elsewhere("http"),
                Stored::Encrypted("p2esk2TFqgNcoT4u99ut5doGTUFNwo9x4nNvkpM6YMLqXrt4SbFdQnqLM3hoAXLMB2uZYazj6LZGvcoYzk16H6Et"),
            ]
        );
        let again = parse(&serialize(&entries)).unwrap().entries;
        assert_eq!(again.len(), entries.len());
        for (a, b) in again.iter().zip(&entries) {
            assert_eq!((&a.name, &*a.value.0), (&b.name, &*b.value.0));
        }
        assert!(parse(&serialize(&[])).unwrap().entries.is_empty());
    }

    #[test]
    fn sealed_files_parse_and_round_trip_and_other_formats_are_refused() {
        let text = br#"{ "signatory_sealed_key_file": 1,
  "sealed_by": {"vault": "kms", "key": "alias/seal"}, "data_key": "0a0b",
  "keys": [ {"name": "tz4", "value": "sealed:00ff"} ] }"#;
        let file = parse(text).unwrap();
        let header = file.sealed.clone().unwrap();
        assert_eq!(header.sealed_by.vault, "kms");
        assert_eq!(header.sealed_by.key, "alias/seal");
        assert_eq!(header.data_key, "0a0b");
        assert_eq!(classify(&file.entries[0].value.0), Stored::Sealed("00ff"));
        let again = parse(&serialize_file(&file)).unwrap();
        assert_eq!(again.sealed, file.sealed);
        assert_eq!(&*again.entries[0].value.0, "sealed:00ff");
        let newer = String::from_utf8_lossy(text).replace(": 1,", ": 2,");
        assert!(parse(newer.as_bytes()).unwrap_err().contains("format 2"));
        let e = parse(br#"{"keys": []}"#).unwrap_err();
        assert!(e.contains("sealed key file"), "{e}");
    }

    #[test]
    fn bare_keys_are_classified_by_their_prefix() {
        assert_eq!(
            classify("edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh"),
            Stored::Plain("edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh")
        );
        let esk = "p2esk2TFqgNcoT4u99ut5doGTUFNwo9x4nNvkpM6YMLqXrt4SbFdQnqLM3hoAXLMB2uZYazj6LZGvcoYzk16H6Et";
        assert_eq!(classify(esk), Stored::Encrypted(esk));
    }

    #[test]
    fn parse_errors_never_echo_content() {
        let secret = "edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh";
        for text in [
            format!(r#"[{{"name": "a", "value": "{secret}""#),
            format!(r#"{{"name": "a", "value": "{secret}"}}"#),
            format!(r#"[{{"name": ["{secret}"], "value": "x"}}]"#),
            format!(r#"[{{"value": "{secret}"}}]"#),
        ] {
            let message = parse(text.as_bytes()).unwrap_err();
            assert!(!message.contains(secret), "{message}");
            assert!(message.contains("line 1"), "{message}");
        }
    }

    #[test]
    fn debug_of_an_entry_hides_its_value() {
        let entries = parse(br#"[{"name": "k", "value": "unencrypted:edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh"}]"#).unwrap().entries;
        let debug = format!("{entries:?}");
        assert!(!debug.contains("edsk3g"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }
}
