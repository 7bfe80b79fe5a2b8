//! Which KMS keys can sign Tezos requests, and as which curve.

use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState, KeyUsageType};
use tezos_crypto::Curve;

/// The KMS key spec of a curve this driver signs with (tz2, tz3).
pub(crate) fn key_spec(curve: Curve) -> Option<KeySpec> {
    match curve {
        Curve::Secp256k1 => Some(KeySpec::EccSecgP256K1),
        Curve::P256 => Some(KeySpec::EccNistP256),
        // KMS has Ed25519 keys (ECC_NIST_EDWARDS25519) but no emulator here has them, so
        // the driver does not sign with them untested; BLS keys KMS does not have.
        Curve::Ed25519 | Curve::Bls12_381 => None,
    }
}

/// The curve of an enabled SIGN_VERIFY key of a spec Tezos signs with, or why the key is
/// skipped.
pub(crate) fn usable(meta: &KeyMetadata) -> Result<Curve, String> {
    match &meta.key_state {
        Some(KeyState::Enabled) => {}
        Some(state) => return Err(format!("the key is {}, not Enabled", state.as_str())),
        None => return Err("KMS did not say the key's state".to_owned()),
    }
    match &meta.key_usage {
        Some(KeyUsageType::SignVerify) => {}
        Some(usage) => {
            return Err(format!(
                "its key usage is {}, not SIGN_VERIFY",
                usage.as_str()
            ))
        }
        None => return Err("KMS did not say the key's usage".to_owned()),
    }
    match &meta.key_spec {
        Some(KeySpec::EccSecgP256K1) => Ok(Curve::Secp256k1),
        Some(KeySpec::EccNistP256) => Ok(Curve::P256),
        Some(spec) => Err(format!(
            "key spec {} is not one this driver signs with (ECC_SECG_P256K1 for tz2, \
             ECC_NIST_P256 for tz3)",
            spec.as_str()
        )),
        None => Err("KMS did not say the key's spec".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn meta(state: KeyState, usage: KeyUsageType, spec: KeySpec) -> KeyMetadata {
        KeyMetadata::builder()
            .key_id("k")
            .key_state(state)
            .key_usage(usage)
            .key_spec(spec)
            .build()
            .unwrap()
    }

    #[test]
    fn enabled_signing_keys_of_the_tezos_curves_are_usable() {
        let ok = |spec| usable(&meta(KeyState::Enabled, KeyUsageType::SignVerify, spec));
        assert_eq!(ok(KeySpec::EccSecgP256K1), Ok(Curve::Secp256k1));
        assert_eq!(ok(KeySpec::EccNistP256), Ok(Curve::P256));
        for curve in [Curve::Secp256k1, Curve::P256] {
            let spec = key_spec(curve).unwrap();
            assert_eq!(ok(spec), Ok(curve));
        }
    }

    #[test]
    fn other_keys_are_skipped_with_the_reason() {
        let reason = |state, usage, spec| usable(&meta(state, usage, spec)).unwrap_err();
        let r = reason(
            KeyState::Disabled,
            KeyUsageType::SignVerify,
            KeySpec::EccNistP256,
        );
        assert!(r.contains("Disabled"), "{r}");
        let r = reason(
            KeyState::PendingDeletion,
            KeyUsageType::SignVerify,
            KeySpec::EccNistP256,
        );
        assert!(r.contains("PendingDeletion"), "{r}");
        let r = reason(
            KeyState::Enabled,
            KeyUsageType::EncryptDecrypt,
            KeySpec::SymmetricDefault,
        );
        assert!(r.contains("ENCRYPT_DECRYPT"), "{r}");
        for spec in [
            KeySpec::EccNistP384,
            KeySpec::EccNistEdwards25519,
            KeySpec::Rsa2048,
        ] {
            let r = reason(KeyState::Enabled, KeyUsageType::SignVerify, spec.clone());
            assert!(r.contains(spec.as_str()), "{r}");
        }
        assert!(key_spec(Curve::Ed25519).is_none() && key_spec(Curve::Bls12_381).is_none());
    }
}
