//! Client authentication as Octez clients do it: the client signs
//! `0x04 ‖ 0x01 ‖ pkh_bin(21) ‖ data` with its own key and passes the signature in the
//! `authentication` query parameter; the request is authenticated by whichever authorized
//! public key verifies it.
//!
//! The keys that may authenticate a request for a signing key are the global list
//! (`server.authorized_keys`) and the clients that key's own policy names. The policy then
//! decides whether that client may use that key (403 otherwise).
//!
//! `GET /authorized_keys` is one list for every key, and an Octez client that finds it
//! non-empty refuses to sign unless its wallet holds one of the listed keys. So it lists
//! clients only when every request must be authenticated anyway (a global list, or a
//! client list in every enabled key's policy); otherwise it is empty, as ECAD Signatory's
//! list is without a global list, and clients of unrestricted keys keep working.

use crate::error::ApiError;
use axum::http::StatusCode;
use std::collections::{BTreeSet, HashMap};
use tezos_crypto::{PublicKey, PublicKeyHash, Signature, SigningVersion};

/// The authorized client keys and whether every request must be authenticated.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// `server.authorized_keys`: may authenticate a request for any key.
    global: Vec<PublicKey>,
    /// Signing keys whose policy names clients: the global list plus those clients' keys.
    per_key: HashMap<PublicKeyHash, Vec<PublicKey>>,
    /// The client key hashes served by `GET /authorized_keys` (see the module notes).
    hashes: Vec<PublicKeyHash>,
    /// Policy clients whose public key was not given: they can never authenticate.
    unresolved: Vec<PublicKeyHash>,
    /// A global list is configured: every request must be authenticated.
    required_globally: bool,
}

/// What the authentication of one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdentity {
    /// No `authentication` parameter, or none needed for this key.
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

fn push_unique(list: &mut Vec<PublicKey>, key: &PublicKey) {
    if !list.contains(key) {
        list.push(key.clone());
    }
}

impl Authenticator {
    /// * `global`: `server.authorized_keys`; when non-empty, every request must authenticate.
    /// * `client_keys`: the public keys of clients named in key policies (the policies hold
    ///   only their hashes).
    /// * `policies`: every enabled signing key and the client hashes its policy accepts,
    ///   `None` when it names none.
    pub fn new<'a>(
        global: Option<Vec<PublicKey>>,
        client_keys: &[PublicKey],
        policies: impl IntoIterator<Item = (PublicKeyHash, Option<&'a BTreeSet<PublicKeyHash>>)>,
    ) -> Self {
        let global = global.unwrap_or_default();
        let mut hashes: Vec<PublicKeyHash> = global.iter().map(PublicKey::hash).collect();
        let mut per_key = HashMap::new();
        let mut unresolved = Vec::new();
        let mut some_key_unrestricted = false;
        for (signer, clients) in policies {
            let Some(clients) = clients else {
                some_key_unrestricted = true;
                continue;
            };
            let mut keys = global.clone();
            for client in clients {
                hashes.push(*client);
                let known = client_keys
                    .iter()
                    .chain(&global)
                    .find(|k| k.hash() == *client);
                match known {
                    Some(k) => push_unique(&mut keys, k),
                    None => unresolved.push(*client),
                }
            }
            per_key.insert(signer, keys);
        }
        if global.is_empty() && some_key_unrestricted {
            // Listing policy clients would make the clients of the other keys refuse to sign.
            hashes.clear();
        }
        hashes.sort();
        hashes.dedup();
        unresolved.sort();
        unresolved.dedup();
        Authenticator {
            required_globally: !global.is_empty(),
            global,
            per_key,
            hashes,
            unresolved,
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

    /// Clients named in a policy whose public key is unknown, so they cannot authenticate.
    pub fn unresolved_clients(&self) -> &[PublicKeyHash] {
        &self.unresolved
    }

    /// Check the `authentication` parameter of a request for `pkh` over `data`.
    /// Missing where the global list requires it: 401; present but malformed: 400, even
    /// where no key is authorized for `pkh`; present and verified by no key authorized
    /// for `pkh`: 403. Where no key is authorized for `pkh` at all, a well-formed signature
    /// is not checked, as Octez does.
    pub fn authenticate(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&str>,
        version: SigningVersion,
    ) -> Result<ClientIdentity, ApiError> {
        let encoded = authentication.filter(|s| !s.is_empty());
        self.check(
            pkh,
            data,
            encoded.map(|encoded| {
                move || {
                    Signature::from_b58check(encoded).map_err(|e| {
                        ApiError::bad_request(format!("malformed `authentication` signature: {e}"))
                    })
                }
            }),
            version,
        )
    }

    /// [`Authenticator::authenticate`] for a signature already decoded (the socket
    /// protocol carries its bytes).
    pub fn authenticate_signature(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        authentication: Option<&Signature>,
        version: SigningVersion,
    ) -> Result<ClientIdentity, ApiError> {
        let decoded = authentication.map(|signature| move || Ok(*signature));
        self.check(pkh, data, decoded, version)
    }

    /// `signature` is decoded only when some key could check it.
    fn check(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
        signature: Option<impl FnOnce() -> Result<Signature, ApiError>>,
        version: SigningVersion,
    ) -> Result<ClientIdentity, ApiError> {
        let candidates = self.per_key.get(pkh).unwrap_or(&self.global);
        let Some(decode) = signature else {
            if self.required_globally {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication required: sign the request with an authorized client key \
                     and pass the signature as `authentication`",
                ));
            }
            // A key policy that names clients refuses this later (401) in the service.
            return Ok(ClientIdentity::Anonymous);
        };
        // Decoded first: a malformed parameter is the client's mistake and is answered
        // (400) whether or not any key would check it, rather than silently ignored.
        let signature = decode()?;
        if candidates.is_empty() {
            return Ok(ClientIdentity::Anonymous);
        }
        let signed = authenticated_bytes(pkh, data);
        candidates
            .iter()
            .find(|k| k.verify(&signed, &signature, version).is_ok())
            .map(|k| ClientIdentity::Authenticated(k.hash()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "authentication signature is not from a client key authorized for {pkh}"
                    ),
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use tezos_crypto::{Curve, SecretKey};

    fn pkh() -> PublicKeyHash {
        "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx".parse().unwrap()
    }

    fn auth_sig(client: &SecretKey, pkh: &PublicKeyHash, data: &[u8]) -> String {
        let v = SigningVersion::default();
        client
            .sign(&authenticated_bytes(pkh, data), v)
            .unwrap()
            .to_b58check()
    }

    #[test]
    fn authenticated_bytes_follow_octez() {
        let b = authenticated_bytes(&pkh(), &[0x11, 0x22]);
        assert_eq!(b.len(), 2 + 21 + 2);
        assert_eq!(&b[..3], &[0x04, 0x01, 0x00]);
        assert_eq!(&b[2..23], &pkh().to_bytes()[..]);
        assert_eq!(&b[23..], &[0x11, 0x22]);
    }

    #[test]
    fn every_curve_authenticates_and_a_stranger_is_refused() {
        for curve in Curve::ALL {
            let client = SecretKey::generate(curve);
            let stranger = SecretKey::generate(curve);
            let auth = Authenticator::new(Some(vec![client.public_key()]), &[], []);
            let data = [0x11, 1, 2, 3];
            let v = SigningVersion::default();
            let good = auth_sig(&client, &pkh(), &data);
            assert_eq!(
                auth.authenticate(&pkh(), &data, Some(&good), v),
                Ok(ClientIdentity::Authenticated(client.public_key().hash()))
            );
            // Same signature, other data: refused.
            let other = auth.authenticate(&pkh(), &[0x11, 9], Some(&good), v);
            assert_eq!(other.unwrap_err().status, StatusCode::FORBIDDEN);
            // Same signature, other signing key: refused.
            let elsewhere: PublicKeyHash = "tz1burnburnburnburnburnburnburjAYjjX".parse().unwrap();
            let moved = auth.authenticate(&elsewhere, &data, Some(&good), v);
            assert_eq!(moved.unwrap_err().status, StatusCode::FORBIDDEN);
            let bad = auth_sig(&stranger, &pkh(), &data);
            let refused = auth.authenticate(&pkh(), &data, Some(&bad), v);
            assert_eq!(refused.unwrap_err().status, StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn missing_authentication_is_401_only_with_a_global_list() {
        let client = SecretKey::generate(Curve::Ed25519);
        let v = SigningVersion::default();
        let global = Authenticator::new(Some(vec![client.public_key()]), &[], []);
        let missing = global.authenticate(&pkh(), b"x", None, v);
        assert_eq!(missing.unwrap_err().status, StatusCode::UNAUTHORIZED);
        let empty = global.authenticate(&pkh(), b"x", Some(""), v);
        assert_eq!(empty.unwrap_err().status, StatusCode::UNAUTHORIZED);
        let garbage = global.authenticate(&pkh(), b"x", Some("edsigXYZ"), v);
        assert_eq!(garbage.unwrap_err().status, StatusCode::BAD_REQUEST);

        // With no authentication configured at all, a malformed parameter is still 400 …
        let open = Authenticator::new(None, &[], []);
        let garbage = open.authenticate(&pkh(), b"x", Some("garbage"), v);
        assert_eq!(garbage.unwrap_err().status, StatusCode::BAD_REQUEST);
        // … and a well-formed one is not checked.
        let signed = auth_sig(&client, &pkh(), b"x");
        assert_eq!(
            open.authenticate(&pkh(), b"x", Some(&signed), v),
            Ok(ClientIdentity::Anonymous)
        );

        let clients: BTreeSet<_> = [client.public_key().hash()].into();
        let per_key = Authenticator::new(None, &[client.public_key()], [(pkh(), Some(&clients))]);
        // The policy, not the authenticator, refuses this one.
        assert_eq!(
            per_key.authenticate(&pkh(), b"x", None, v),
            Ok(ClientIdentity::Anonymous)
        );
    }

    #[test]
    fn a_policy_client_authenticates_only_for_its_key() {
        let client = SecretKey::generate(Curve::P256);
        let global_client = SecretKey::generate(Curve::Ed25519);
        let other: PublicKeyHash = "tz1burnburnburnburnburnburnburjAYjjX".parse().unwrap();
        let clients: BTreeSet<_> = [client.public_key().hash()].into();
        let v = SigningVersion::default();

        let with_global = Authenticator::new(
            Some(vec![global_client.public_key()]),
            &[client.public_key()],
            [(pkh(), Some(&clients)), (other, None)],
        );
        let sig = auth_sig(&client, &other, b"x");
        // Accepted for the key whose policy names it...
        let ok = with_global.authenticate(&pkh(), b"x", Some(&auth_sig(&client, &pkh(), b"x")), v);
        assert_eq!(
            ok,
            Ok(ClientIdentity::Authenticated(client.public_key().hash()))
        );
        // ...refused for a key that only the global list covers.
        let refused = with_global.authenticate(&other, b"x", Some(&sig), v);
        assert_eq!(refused.unwrap_err().status, StatusCode::FORBIDDEN);
        // The global client may authenticate for both (the policy decides afterwards).
        let g = auth_sig(&global_client, &pkh(), b"x");
        assert!(with_global.authenticate(&pkh(), b"x", Some(&g), v).is_ok());

        // Without a global list, a key nobody is authorized for ignores the parameter.
        let per_key_only = Authenticator::new(
            None,
            &[client.public_key()],
            [(pkh(), Some(&clients)), (other, None)],
        );
        assert_eq!(
            per_key_only.authenticate(&other, b"x", Some(&sig), v),
            Ok(ClientIdentity::Anonymous)
        );
    }

    /// Without a global list, listing one key's clients would make Octez clients of the
    /// other keys refuse to sign (no listed key in their wallet): the list stays empty
    /// unless every key names its clients.
    #[test]
    fn clients_are_listed_only_when_every_key_needs_authentication() {
        let client = SecretKey::generate(Curve::P256);
        let c = client.public_key();
        let clients: BTreeSet<_> = [c.hash()].into();
        let other: PublicKeyHash = "tz1burnburnburnburnburnburnburjAYjjX".parse().unwrap();
        let keys = std::slice::from_ref(&c);
        let mixed = Authenticator::new(None, keys, [(pkh(), Some(&clients)), (other, None)]);
        assert_eq!(mixed.authorized_key_hashes(), None);
        // The restricted key's clients can still authenticate when they send a signature.
        let v = SigningVersion::default();
        let sig = auth_sig(&client, &pkh(), b"x");
        assert_eq!(
            mixed.authenticate(&pkh(), b"x", Some(&sig), v),
            Ok(ClientIdentity::Authenticated(c.hash()))
        );
        let all = Authenticator::new(
            None,
            keys,
            [(pkh(), Some(&clients)), (other, Some(&clients))],
        );
        assert_eq!(all.authorized_key_hashes(), Some(&[c.hash()][..]));
    }

    #[test]
    fn authorized_list_is_the_union_and_never_empty() {
        assert_eq!(Authenticator::default().authorized_key_hashes(), None);
        let empty_global = Authenticator::new(Some(vec![]), &[], []);
        assert_eq!(empty_global.authorized_key_hashes(), None);
        let g = SecretKey::generate(Curve::Ed25519).public_key();
        let c = SecretKey::generate(Curve::P256).public_key();
        let missing: PublicKeyHash = "tz1burnburnburnburnburnburnburjAYjjX".parse().unwrap();
        let clients: BTreeSet<_> = [c.hash(), g.hash(), missing].into();
        let a = Authenticator::new(
            Some(vec![g.clone()]),
            std::slice::from_ref(&c),
            [(pkh(), Some(&clients)), (missing, None)],
        );
        let mut expected = [g.hash(), c.hash(), missing];
        expected.sort();
        assert_eq!(a.authorized_key_hashes(), Some(&expected[..]));
        assert_eq!(a.unresolved_clients(), &[missing]);
    }
}
