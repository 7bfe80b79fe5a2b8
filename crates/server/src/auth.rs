//! Client authentication as Octez clients do it: the client signs
//! `0x04 ‖ 0x01 ‖ pkh_bin(21) ‖ data` with its own key and passes the signature in the
//! `authentication` query parameter; the request is authenticated by whichever authorized
//! public key verifies it.

use crate::error::ApiError;
use axum::http::StatusCode;
use tezos_crypto::{PublicKey, PublicKeyHash, Signature, SigningVersion};

/// The authorized client keys and whether every request must be authenticated.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// Every client public key that may authenticate: the global list and every key's own.
    keys: Vec<PublicKey>,
    /// The hashes of `keys`, served by `GET /authorized_keys`.
    hashes: Vec<PublicKeyHash>,
    /// A global list is configured: every request must be authenticated.
    required_globally: bool,
}

/// What the authentication of one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdentity {
    /// No `authentication` parameter.
    Anonymous,
    /// Verified by this client key.
    Authenticated(PublicKeyHash),
}

impl ClientIdentity {
    pub fn pkh(&self) -> Option<&PublicKeyHash> {
        match self {
            ClientIdentity::Anonymous => None,
            ClientIdentity::Authenticated(p) => Some(p),
        }
    }
}

/// The bytes a client signs to authenticate a request for `pkh` carrying `data`.
pub fn authenticated_bytes(pkh: &PublicKeyHash, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 21 + data.len());
    out.extend_from_slice(&[0x04, 0x01]);
    out.extend_from_slice(&pkh.to_bytes());
    out.extend_from_slice(data);
    out
}

impl Authenticator {
    /// `global`: the server-wide list (when set, every request must authenticate);
    /// `per_key`: keys listed in individual key policies.
    pub fn new(global: Option<Vec<PublicKey>>, per_key: Vec<PublicKey>) -> Self {
        let required_globally = global.as_ref().is_some_and(|g| !g.is_empty());
        let mut keys = global.unwrap_or_default();
        for k in per_key {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut hashes: Vec<PublicKeyHash> = keys.iter().map(PublicKey::hash).collect();
        hashes.sort();
        hashes.dedup();
        Authenticator {
            keys,
            hashes,
            required_globally,
        }
    }

    /// The client key hashes, or `None` when no authentication is configured at all (the
    /// API then answers `{}`: an empty list would make octez-client abort).
    pub fn authorized_key_hashes(&self) -> Option<&[PublicKeyHash]> {
        if self.hashes.is_empty() {
            None
        } else {
            Some(&self.hashes)
        }
    }

    /// Check the `authentication` parameter of a request for `pkh` over `data`.
    /// Missing where a global list requires it: 401; present but malformed: 400; present
    /// and verified by no authorized key: 403.
    pub fn authenticate(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&str>,
        version: SigningVersion,
    ) -> Result<ClientIdentity, ApiError> {
        let Some(encoded) = authentication.filter(|s| !s.is_empty()) else {
            if self.required_globally {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication required: sign the request with an authorized client key",
                ));
            }
            return Ok(ClientIdentity::Anonymous);
        };
        let signature = Signature::from_b58check(encoded).map_err(|e| {
            ApiError::bad_request(format!("malformed authentication signature: {e}"))
        })?;
        let signed = authenticated_bytes(pkh, data);
        self.keys
            .iter()
            .find(|k| k.verify(&signed, &signature, version).is_ok())
            .map(|k| ClientIdentity::Authenticated(k.hash()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "authentication signature is not from an authorized client key",
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tezos_crypto::{Curve, SecretKey};

    fn pkh() -> PublicKeyHash {
        "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx".parse().unwrap()
    }

    #[test]
    fn every_curve_authenticates_and_a_stranger_is_refused() {
        for curve in Curve::ALL {
            let client = SecretKey::generate(curve);
            let stranger = SecretKey::generate(curve);
            let auth = Authenticator::new(Some(vec![client.public_key()]), vec![]);
            let data = [0x11, 1, 2, 3];
            let v = SigningVersion::default();
            let good = client
                .sign(&authenticated_bytes(&pkh(), &data), v)
                .unwrap()
                .to_b58check();
            assert_eq!(
                auth.authenticate(&pkh(), &data, Some(&good), v),
                Ok(ClientIdentity::Authenticated(client.public_key().hash()))
            );
            // Same signature, other data: refused.
            let other = auth.authenticate(&pkh(), &[0x11, 9], Some(&good), v);
            assert_eq!(other.unwrap_err().status, StatusCode::FORBIDDEN);
            let bad = stranger
                .sign(&authenticated_bytes(&pkh(), &data), v)
                .unwrap()
                .to_b58check();
            let refused = auth.authenticate(&pkh(), &data, Some(&bad), v);
            assert_eq!(refused.unwrap_err().status, StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn missing_authentication_is_401_only_with_a_global_list() {
        let client = SecretKey::generate(Curve::Ed25519);
        let v = SigningVersion::default();
        let global = Authenticator::new(Some(vec![client.public_key()]), vec![]);
        let missing = global.authenticate(&pkh(), b"x", None, v);
        assert_eq!(missing.unwrap_err().status, StatusCode::UNAUTHORIZED);
        let per_key = Authenticator::new(None, vec![client.public_key()]);
        assert_eq!(
            per_key.authenticate(&pkh(), b"x", None, v),
            Ok(ClientIdentity::Anonymous)
        );
        let garbage = per_key.authenticate(&pkh(), b"x", Some("edsigXYZ"), v);
        assert_eq!(garbage.unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn no_configuration_means_no_list() {
        assert_eq!(Authenticator::default().authorized_key_hashes(), None);
        let k = SecretKey::generate(Curve::P256).public_key();
        let a = Authenticator::new(None, vec![k.clone(), k.clone()]);
        assert_eq!(a.authorized_key_hashes(), Some(&[k.hash()][..]));
    }
}
