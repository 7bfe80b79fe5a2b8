//! Arbitrary text into every base58check decoder: none may panic, and whatever decodes
//! must encode back to a string that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tezos_crypto::base58::{self, Prefix};
use tezos_crypto::{encrypted, PublicKey, PublicKeyHash, SecretKey, Signature};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(body) = base58::decode_raw(s) {
        // Re-encoding the body with its checksum gives the canonical string back.
        if let Some((prefix, payload)) = Prefix::ALL.iter().find_map(|p| {
            body.strip_prefix(p.bytes())
                .filter(|rest| rest.len() == p.payload_len())
                .map(|rest| (*p, rest))
        }) {
            let again = base58::encode(prefix, payload);
            assert_eq!(
                base58::decode(&again, prefix).ok().as_deref(),
                Some(payload)
            );
        }
    }

    if let Ok((prefix, payload)) = base58::decode_any(s, &Prefix::ALL) {
        let again = base58::encode(prefix, &payload);
        assert_eq!(
            base58::decode_any(&again, &Prefix::ALL),
            Ok((prefix, payload))
        );
    }

    if let Ok(pkh) = PublicKeyHash::from_b58check(s) {
        assert_eq!(PublicKeyHash::from_b58check(&pkh.to_b58check()), Ok(pkh));
        assert_eq!(PublicKeyHash::from_bytes(&pkh.to_bytes()), Ok(pkh));
    }

    if let Ok(pk) = PublicKey::from_b58check(s) {
        assert_eq!(
            PublicKey::from_b58check(&pk.to_b58check()).as_ref(),
            Ok(&pk)
        );
        assert_eq!(
            PublicKey::from_tagged_bytes(&pk.to_tagged_bytes()).as_ref(),
            Ok(&pk)
        );
    }

    if let Ok(sig) = Signature::from_b58check(s) {
        assert_eq!(Signature::from_b58check(&sig.to_b58check()), Ok(sig));
        if let Some(generic) = sig.to_generic_b58check() {
            assert!(Signature::from_b58check(&generic).is_ok());
        }
    }

    if let Ok(sk) = SecretKey::from_b58check(s) {
        let again = SecretKey::from_b58check(&sk.to_b58check());
        assert_eq!(again.map(|k| k.public_key()).as_ref(), Ok(&sk.public_key()));
    }

    let _ = encrypted::is_encrypted(s);
});
