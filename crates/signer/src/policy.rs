//! The per-key policy: which request kinds, operation kinds and chains a key may sign, and
//! for which authenticated clients. Pure decisions, no I/O; the configuration crate builds a
//! [`KeyPolicy`] and the service asks [`KeyPolicy::check_sign`] before touching the
//! watermark or the vault.

use std::collections::BTreeSet;
use std::fmt;
use tezos_crypto::{ChainId, PublicKeyHash};

/// Request kinds a key gets when it is listed with no policy of its own.
pub const DEFAULT_REQUEST_KINDS: [&str; 3] = ["block", "preattestation", "attestation"];

/// What one key may sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Request kinds ("block", "attestation", "attestation_with_dal", "generic", "pack", …).
    pub allowed_requests: BTreeSet<String>,
    /// Operation kinds a generic (0x03) request may contain, including the pseudo-kinds
    /// `stake`, `unstake`, `finalize_unstake`, `set_delegate_parameters`, and `ballot`
    /// (every ballot) or `ballot:yay|nay|pass` (that ballot only).
    pub allowed_operations: BTreeSet<String>,
    /// When set, requests that carry a chain id must carry one of these.
    pub allowed_chains: Option<BTreeSet<ChainId>>,
    /// When set, the request must be authenticated by one of these client keys.
    pub authorized_clients: Option<BTreeSet<PublicKeyHash>>,
    /// BLS proof of possession may be produced for this (tz4) key.
    pub allow_proof_of_possession: bool,
    /// Log the request bytes of every signing request for this key.
    pub log_payloads: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            allowed_requests: DEFAULT_REQUEST_KINDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allowed_operations: BTreeSet::new(),
            allowed_chains: None,
            authorized_clients: None,
            allow_proof_of_possession: false,
            log_payloads: false,
        }
    }
}

/// What the policy needs to know about a decoded request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request kind as the policy names it (`block`, `attestation_with_dal`, `generic` …).
    pub kind: &'a str,
    /// The chain the request is bound to, when its encoding carries one.
    pub chain_id: Option<ChainId>,
    /// For generic operations: the policy kind of every content, pseudo-kinds applied
    /// (`transaction` to self with entrypoint `stake` is `stake`; a ballot is `ballot:yay` …).
    pub operation_kinds: &'a [String],
}

/// Why a request was refused by policy. The messages are for the client and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyDenial {
    #[error("chain {0} is not allowed for this key")]
    ChainNotAllowed(ChainId),
    #[error("authentication is required for this key")]
    AuthenticationRequired,
    #[error("client {0} is not authorized for this key")]
    ClientNotAuthorized(PublicKeyHash),
    #[error(
        "request kind `{0}` is not allowed for this key (the signer's operator can allow it \
         with `{0}:` under `allow` in the key's policy)"
    )]
    RequestKindNotAllowed(String),
    #[error("operation `{0}` is not allowed for this key")]
    OperationNotAllowed(String),
    #[error("proof of possession is not allowed for this key")]
    ProofOfPossessionNotAllowed,
}

impl PolicyDenial {
    /// Whether the denial is about who asked (authentication) rather than what was asked.
    pub fn is_authentication(&self) -> bool {
        matches!(self, PolicyDenial::AuthenticationRequired)
    }
}

impl KeyPolicy {
    /// Decide whether a signing request is allowed. `client` is the authenticated client's
    /// key hash, if the request was authenticated.
    pub fn check_sign(
        &self,
        facts: &RequestFacts<'_>,
        client: Option<&PublicKeyHash>,
    ) -> Result<(), PolicyDenial> {
        if let (Some(allowed), Some(chain)) = (&self.allowed_chains, facts.chain_id) {
            if !allowed.contains(&chain) {
                return Err(PolicyDenial::ChainNotAllowed(chain));
            }
        }
        self.check_client(client)?;
        if !self.allowed_requests.contains(facts.kind) {
            return Err(PolicyDenial::RequestKindNotAllowed(facts.kind.to_string()));
        }
        if facts.kind == "generic" {
            for op in facts.operation_kinds {
                if !self.operation_allowed(op) {
                    return Err(PolicyDenial::OperationNotAllowed(op.clone()));
                }
            }
        }
        Ok(())
    }

    /// Decide whether a proof of possession may be produced.
    pub fn check_proof_of_possession(
        &self,
        client: Option<&PublicKeyHash>,
    ) -> Result<(), PolicyDenial> {
        self.check_client(client)?;
        if !self.allow_proof_of_possession {
            return Err(PolicyDenial::ProofOfPossessionNotAllowed);
        }
        Ok(())
    }

    fn check_client(&self, client: Option<&PublicKeyHash>) -> Result<(), PolicyDenial> {
        match (&self.authorized_clients, client) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(PolicyDenial::AuthenticationRequired),
            (Some(allowed), Some(c)) if allowed.contains(c) => Ok(()),
            (Some(_), Some(c)) => Err(PolicyDenial::ClientNotAuthorized(*c)),
        }
    }

    fn operation_allowed(&self, op: &str) -> bool {
        if self.allowed_operations.contains(op) {
            return true;
        }
        // `ballot` in the policy allows every ballot; `ballot:yay` only that one.
        op.strip_prefix("ballot:").is_some() && self.allowed_operations.contains("ballot")
    }
}

impl fmt::Display for KeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests: Vec<&str> = self.allowed_requests.iter().map(String::as_str).collect();
        write!(f, "{}", requests.join(","))?;
        if !self.allowed_operations.is_empty() {
            let ops: Vec<&str> = self.allowed_operations.iter().map(String::as_str).collect();
            write!(f, " generic=[{}]", ops.join(","))?;
        }
        if let Some(chains) = &self.allowed_chains {
            let chains: Vec<String> = chains.iter().map(ChainId::to_b58check).collect();
            write!(f, " chains=[{}]", chains.join(","))?;
        }
        if self.authorized_clients.is_some() {
            write!(f, " authenticated")?;
        }
        if self.allow_proof_of_possession {
            write!(f, " pop")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chain(s: &str) -> ChainId {
        s.parse().unwrap()
    }

    fn pkh(s: &str) -> PublicKeyHash {
        s.parse().unwrap()
    }

    fn facts<'a>(kind: &'a str, ops: &'a [String]) -> RequestFacts<'a> {
        RequestFacts {
            kind,
            chain_id: Some(chain("NetXxkAx4woPLyu")),
            operation_kinds: ops,
        }
    }

    fn ops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_policy_allows_consensus_and_refuses_the_rest() {
        let p = KeyPolicy::default();
        for kind in ["block", "preattestation", "attestation"] {
            assert_eq!(p.check_sign(&facts(kind, &[]), None), Ok(()));
        }
        for kind in ["attestation_with_dal", "generic", "pack"] {
            assert_eq!(
                p.check_sign(&facts(kind, &[]), None),
                Err(PolicyDenial::RequestKindNotAllowed(kind.into()))
            );
        }
        // The refusal says how to allow it.
        let message = PolicyDenial::RequestKindNotAllowed("attestation_with_dal".into());
        assert!(message
            .to_string()
            .contains("`attestation_with_dal:` under `allow`"));
    }

    #[test]
    fn every_generic_operation_must_be_allowed() {
        let p = KeyPolicy {
            allowed_requests: ["generic".to_string()].into(),
            allowed_operations: ["transaction".to_string(), "reveal".to_string()].into(),
            ..KeyPolicy::default()
        };
        let good = ops(&["reveal", "transaction"]);
        assert_eq!(p.check_sign(&facts("generic", &good), None), Ok(()));
        let bad = ops(&["reveal", "delegation", "transaction"]);
        assert_eq!(
            p.check_sign(&facts("generic", &bad), None),
            Err(PolicyDenial::OperationNotAllowed("delegation".into()))
        );
        // A pseudo-kind is not covered by its base kind.
        let stake = ops(&["stake"]);
        assert_eq!(
            p.check_sign(&facts("generic", &stake), None),
            Err(PolicyDenial::OperationNotAllowed("stake".into()))
        );
    }

    #[test]
    fn ballot_allows_every_ballot_and_a_sub_kind_only_itself() {
        let all = KeyPolicy {
            allowed_requests: ["generic".to_string()].into(),
            allowed_operations: ["ballot".to_string()].into(),
            ..KeyPolicy::default()
        };
        let only_yay = KeyPolicy {
            allowed_operations: ["ballot:yay".to_string()].into(),
            ..all.clone()
        };
        for b in ["ballot:yay", "ballot:nay", "ballot:pass"] {
            let o = ops(&[b]);
            assert_eq!(all.check_sign(&facts("generic", &o), None), Ok(()));
            let expected = if b == "ballot:yay" {
                Ok(())
            } else {
                Err(PolicyDenial::OperationNotAllowed(b.into()))
            };
            assert_eq!(only_yay.check_sign(&facts("generic", &o), None), expected);
        }
    }

    #[test]
    fn chains_are_checked_only_when_the_request_has_one() {
        let p = KeyPolicy {
            allowed_chains: Some([chain("NetXdQprcVkpaWU")].into()),
            allowed_requests: ["block".to_string(), "generic".to_string()].into(),
            allowed_operations: ["transaction".to_string()].into(),
            ..KeyPolicy::default()
        };
        assert_eq!(
            p.check_sign(&facts("block", &[]), None),
            Err(PolicyDenial::ChainNotAllowed(chain("NetXxkAx4woPLyu")))
        );
        let mainnet = RequestFacts {
            chain_id: Some(chain("NetXdQprcVkpaWU")),
            ..facts("block", &[])
        };
        assert_eq!(p.check_sign(&mainnet, None), Ok(()));
        let tx = ops(&["transaction"]);
        let generic = RequestFacts {
            chain_id: None,
            ..facts("generic", &tx)
        };
        assert_eq!(p.check_sign(&generic, None), Ok(()));
    }

    #[test]
    fn authorized_clients_require_authentication_by_one_of_them() {
        let client = pkh("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv");
        let other = pkh("tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD");
        let p = KeyPolicy {
            authorized_clients: Some([client].into()),
            ..KeyPolicy::default()
        };
        let f = facts("block", &[]);
        assert_eq!(
            p.check_sign(&f, None),
            Err(PolicyDenial::AuthenticationRequired)
        );
        assert_eq!(
            p.check_sign(&f, Some(&other)),
            Err(PolicyDenial::ClientNotAuthorized(other))
        );
        assert_eq!(p.check_sign(&f, Some(&client)), Ok(()));
        // Without a list, an authenticated client is fine too.
        assert_eq!(KeyPolicy::default().check_sign(&f, Some(&other)), Ok(()));
    }

    #[test]
    fn proof_of_possession_needs_its_flag() {
        let p = KeyPolicy::default();
        assert_eq!(
            p.check_proof_of_possession(None),
            Err(PolicyDenial::ProofOfPossessionNotAllowed)
        );
        let p = KeyPolicy {
            allow_proof_of_possession: true,
            ..p
        };
        assert_eq!(p.check_proof_of_possession(None), Ok(()));
    }
}
