//! The names a policy may use: request kinds (the keys of `allow`) and operation kinds (the
//! items of `allow.generic`), with the legacy names older configurations still carry.

/// Request kinds a key may be allowed, as the decoder names them.
pub const REQUEST_KINDS: [&str; 6] = [
    "attestation",
    "attestation_with_dal",
    "block",
    "generic",
    "pack",
    "preattestation",
];

/// Request kinds a key listed with no policy gets.
pub const DEFAULT_REQUEST_KINDS: [&str; 3] = ["block", "preattestation", "attestation"];

/// Pre-Paris names of request kinds, and what they are called now.
pub const LEGACY_REQUEST_KINDS: [(&str, &str); 2] = [
    ("endorsement", "attestation"),
    ("preendorsement", "preattestation"),
];

/// Octez operation kind names of the current protocols, as they appear in generic (0x03)
/// requests, including the consensus contents a generic request may carry (the decoder
/// names the BLS-mode tags 40/41 `bls_mode_preattestation`/`bls_mode_attestation`).
pub const OPERATION_KINDS: [&str; 40] = [
    "activate_account",
    "attestation",
    "attestation_with_dal",
    "attestations_aggregate",
    "ballot",
    "bls_mode_attestation",
    "bls_mode_preattestation",
    "dal_entrapment_evidence",
    "dal_publish_commitment",
    "delegation",
    "double_baking_evidence",
    "double_consensus_operation_evidence",
    "drain_delegate",
    "failing_noop",
    "increase_paid_storage",
    "origination",
    "preattestation",
    "preattestations_aggregate",
    "proposals",
    "register_global_constant",
    "reveal",
    "seed_nonce_revelation",
    "set_deposits_limit",
    "signature_prefix",
    "smart_rollup_add_messages",
    "smart_rollup_cement",
    "smart_rollup_execute_outbox_message",
    "smart_rollup_originate",
    "smart_rollup_publish",
    "smart_rollup_recover_bond",
    "smart_rollup_refute",
    "smart_rollup_timeout",
    "transaction",
    "transfer_ticket",
    "update_companion_key",
    "update_consensus_key",
    "vdf_revelation",
    "zk_rollup_origination",
    "zk_rollup_publish",
    "zk_rollup_update",
];

/// ECAD Signatory's pseudo-kinds: a transaction to oneself calling a staking entrypoint,
/// and a ballot restricted to one vote (`ballot` alone allows every vote).
pub const PSEUDO_OPERATION_KINDS: [&str; 7] = [
    "stake",
    "unstake",
    "finalize_unstake",
    "set_delegate_parameters",
    "ballot:yay",
    "ballot:nay",
    "ballot:pass",
];

/// Older operation kind names, and the kind they are now.
pub const LEGACY_OPERATION_KINDS: [(&str, &str); 6] = [
    ("endorsement", "attestation"),
    ("preendorsement", "preattestation"),
    (
        "double_endorsement_evidence",
        "double_consensus_operation_evidence",
    ),
    (
        "double_preendorsement_evidence",
        "double_consensus_operation_evidence",
    ),
    (
        "double_attestation_evidence",
        "double_consensus_operation_evidence",
    ),
    (
        "double_preattestation_evidence",
        "double_consensus_operation_evidence",
    ),
];

/// Whether `kind` may appear in `allow.generic`.
pub fn is_operation_kind(kind: &str) -> bool {
    OPERATION_KINDS.contains(&kind) || PSEUDO_OPERATION_KINDS.contains(&kind)
}

/// Whether `kind` may be a key of `allow`.
pub fn is_request_kind(kind: &str) -> bool {
    REQUEST_KINDS.contains(&kind)
}

pub(crate) fn legacy_request_kind(kind: &str) -> Option<&'static str> {
    LEGACY_REQUEST_KINDS
        .iter()
        .find(|(old, _)| *old == kind)
        .map(|(_, new)| *new)
}

pub(crate) fn legacy_operation_kind(kind: &str) -> Option<&'static str> {
    LEGACY_OPERATION_KINDS
        .iter()
        .find(|(old, _)| *old == kind)
        .map(|(_, new)| *new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_unique_so_messages_read_well() {
        for list in [&REQUEST_KINDS[..], &OPERATION_KINDS[..]] {
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, list);
        }
    }

    #[test]
    fn legacy_names_point_at_known_kinds() {
        for (old, new) in LEGACY_REQUEST_KINDS {
            assert!(!is_request_kind(old) && is_request_kind(new));
        }
        for (old, new) in LEGACY_OPERATION_KINDS {
            assert!(!is_operation_kind(old) && is_operation_kind(new));
        }
        for kind in DEFAULT_REQUEST_KINDS {
            assert!(is_request_kind(kind));
        }
    }
}
