//! Sealed key files: the `file` vault's keys encrypted under a random data key that
//! another vault (a cloud KMS, Vault transit) encrypts, so a key no KMS can hold (tz4,
//! BLS12-381) is still protected by one. The data key is unsealed once at start into wiped
//! memory; neither it nor a secret key is ever written in clear.
//!
//! ```json
//! {
//!   "signatory_sealed_key_file": 1,
//!   "sealed_by": { "vault": "kms", "key": "alias/signatory-seal" },
//!   "data_key": "<hex: the data key as the sealing vault encrypted it>",
//!   "keys": [ { "name": "tz4…", "value": "sealed:<hex: nonce(24) ‖ XSalsa20-Poly1305(secret key)>" } ]
//! }
//! ```
//!
//! Each secret key (its base58 text, `BLsk…`, `edsk…`) is sealed with its own random
//! 24-byte nonce; the Poly1305 tag makes a changed byte, or a data key from another file,
//! fail to open rather than yield another key.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// The format version this build writes and reads.
pub(crate) const FORMAT: u32 = 1;

/// How the value of a sealed entry starts.
pub(crate) const PREFIX: &str = "sealed:";

const NONCE_LEN: usize = 24;

/// Which vault sealed the data key, and under which of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedBy {
    /// The sealing vault's name in the configuration (`vaults.<name>`).
    pub vault: String,
    /// The sealing vault's name for its key (a KMS key id or alias, a transit key name).
    pub key: String,
}

/// The head of a sealed key file: who sealed its data key, and the sealed data key (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealHeader {
    pub sealed_by: SealedBy,
    pub data_key: String,
}

/// A data key in memory that is wiped on drop.
pub(crate) struct DataKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(REDACTED)")
    }
}

impl DataKey {
    pub fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut_slice());
        DataKey(key)
    }

    /// The key as the sealing vault returned it once unsealed.
    pub fn from_unsealed(bytes: &[u8]) -> Result<DataKey, &'static str> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err("the unsealed data key is not 32 bytes long");
        }
        key.copy_from_slice(bytes);
        Ok(DataKey(key))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_slice()
    }

    fn cipher(&self) -> XSalsa20Poly1305 {
        XSalsa20Poly1305::new(self.0.as_slice().into())
    }

    /// The entry value of `secret` (a secret key's base58 text): `sealed:<hex>`.
    pub fn seal(&self, secret: &str) -> Result<Zeroizing<String>, &'static str> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), secret.as_bytes())
            .map_err(|_| "sealing a secret key failed")?;
        let mut text = Zeroizing::new(String::with_capacity(
            PREFIX.len() + 2 * (NONCE_LEN + sealed.len()),
        ));
        text.push_str(PREFIX);
        text.push_str(&hex::encode(nonce));
        text.push_str(&hex::encode(sealed));
        Ok(text)
    }

    /// The secret key text of an entry value without its `sealed:` prefix.
    pub fn open(&self, sealed_hex: &str) -> Result<Zeroizing<String>, &'static str> {
        const BAD: &str = "a sealed key that does not open with this file's data key (changed \
                           bytes, or a data key of another file)";
        let bytes = hex::decode(sealed_hex).map_err(|_| "a sealed key that is not hex")?;
        let (nonce, sealed) = bytes
            .split_at_checked(NONCE_LEN)
            .ok_or("a sealed key too short to hold its nonce")?;
        let opened = Zeroizing::new(
            self.cipher()
                .decrypt(Nonce::from_slice(nonce), sealed)
                .map_err(|_| BAD)?,
        );
        let text = std::str::from_utf8(&opened).map_err(|_| BAD)?;
        Ok(Zeroizing::new(text.to_owned()))
    }
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
    fn a_sealed_secret_opens_only_with_its_data_key_and_unchanged() {
        let key = DataKey::generate();
        let secret = "BLsk1hfuv6V8JJRaLDBJgPTRGLKusTZnTmWGrvSKYzUaMuzvPLmeGG";
        let value = key.seal(secret).unwrap();
        let hex_part = value.strip_prefix(PREFIX).unwrap();
        assert!(!value.contains(secret));
        assert_eq!(key.open(hex_part).unwrap().as_str(), secret);
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(*key.seal(secret).unwrap(), *value);
        assert!(DataKey::generate().open(hex_part).is_err());
        let mut changed = hex_part.to_owned().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
        assert!(key.open(std::str::from_utf8(&changed).unwrap()).is_err());
        assert!(key.open("00").is_err());
        assert!(format!("{key:?}").contains("REDACTED"));
    }

    #[test]
    fn an_unsealed_data_key_must_be_32_bytes() {
        assert!(DataKey::from_unsealed(&[7; 31]).is_err());
        assert_eq!(DataKey::from_unsealed(&[7; 32]).unwrap().expose(), &[7; 32]);
    }
}
