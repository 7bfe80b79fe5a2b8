//! The state transitions every store applies under its per-key critical section, so that
//! the in-memory and the file store (and later database stores) cannot drift apart.

use signatory_signer::store::StoreError;
use signatory_signer::watermark::{decide, Decision, Watermark, WatermarkKey, WatermarkRequest};
use std::collections::HashSet;
use tezos_crypto::ChainId;

/// Longest signature string accepted (a BLS signature is 142 characters in base58check).
pub(crate) const MAX_SIGNATURE_LEN: usize = 512;

/// Distinct chains a store holds watermarks for unless configured otherwise. A signer
/// serves one network, or a handful (mainnet and a few test networks); without a cap, and
/// without `allowed_chains`, every request naming a new chain id would add state for good.
pub const DEFAULT_MAX_CHAINS: usize = 16;

/// Whether a request for `key` may add state: a chain the store holds nothing for is
/// refused once `chains` already holds `max` of them. Called before anything is recorded.
pub(crate) fn admit_chain(
    chains: &HashSet<ChainId>,
    key: &WatermarkKey,
    max: usize,
) -> Result<(), StoreError> {
    if chains.contains(&key.chain_id) || chains.len() < max {
        return Ok(());
    }
    Err(StoreError::TooManyChains {
        chain: key.chain_id.to_string(),
        max,
    })
}

/// The decision for `req`, and the record to persist when it reserves a new height.
pub(crate) fn check(
    current: Option<&Watermark>,
    req: &WatermarkRequest,
) -> (Decision, Option<Watermark>) {
    let decision = decide(current, req);
    let record = (decision == Decision::Advance).then(|| Watermark::reserved(req));
    (decision, record)
}

/// What attaching a signature to a reservation comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attach {
    /// Persist this record: the reservation with the signature.
    Record(Watermark),
    /// These exact bytes carry a signature already: it is kept, and is the one to release.
    Existing(String),
}

/// Attach `signature` to the reservation of `req`, unless these exact bytes already carry
/// one.
pub(crate) fn attach_signature(
    key: &WatermarkKey,
    current: Option<&Watermark>,
    req: &WatermarkRequest,
    signature: &str,
) -> Result<Attach, StoreError> {
    check_signature(signature)?;
    match current {
        Some(current) if current.is_for(req) => Ok(match &current.signature {
            Some(existing) => Attach::Existing(existing.clone()),
            None => Attach::Record(Watermark {
                signature: Some(signature.to_string()),
                ..current.clone()
            }),
        }),
        other => Err(StoreError::ReservationLost {
            key: key.to_string(),
            expected: req.height(),
            found: other.map(Watermark::height),
        }),
    }
}

/// The record an operator `set` persists, or `None` when nothing changes. Without `force`
/// a watermark is only raised, or completed with a signature for the same bytes.
pub(crate) fn checked_set(
    key: &WatermarkKey,
    current: Option<&Watermark>,
    new: Watermark,
    force: bool,
) -> Result<Option<Watermark>, StoreError> {
    if let Some(signature) = &new.signature {
        check_signature(signature)?;
    }
    let Some(current) = current else {
        return Ok(Some(new));
    };
    if force || new.height() > current.height() {
        return Ok((new != *current).then_some(new));
    }
    if new.height() == current.height() && new.request_hash == current.request_hash {
        let merged = Watermark {
            signature: current.signature.clone().or(new.signature),
            ..new
        };
        return Ok((merged != *current).then_some(merged));
    }
    Err(StoreError::NotAbove {
        key: key.to_string(),
        current: current.height(),
        requested: new.height(),
    })
}

fn check_signature(signature: &str) -> Result<(), StoreError> {
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN || !signature.is_ascii() {
        return Err(StoreError::InvalidRecord(format!(
            "a signature must be 1 to {MAX_SIGNATURE_LEN} ASCII characters (base58check), \
             found {} bytes",
            signature.len()
        )));
    }
    Ok(())
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
    use crate::test_support::key;

    fn mark(level: i32, round: i32, h: u8, sig: Option<&str>) -> Watermark {
        Watermark {
            level,
            round,
            request_hash: [h; 32],
            signature: sig.map(str::to_string),
        }
    }

    #[test]
    fn set_without_force_only_raises() {
        let k = key(0);
        let cur = mark(10, 1, 1, Some("sigA"));
        assert!(matches!(
            checked_set(&k, Some(&cur), mark(10, 0, 1, None), false),
            Err(StoreError::NotAbove { .. })
        ));
        assert!(matches!(
            checked_set(&k, Some(&cur), mark(10, 1, 2, None), false),
            Err(StoreError::NotAbove { .. })
        ));
        assert_eq!(
            checked_set(&k, Some(&cur), mark(10, 2, 2, None), false).unwrap(),
            Some(mark(10, 2, 2, None))
        );
        // same record without signature: nothing to write, the signature is kept
        assert_eq!(
            checked_set(&k, Some(&cur), mark(10, 1, 1, None), false).unwrap(),
            None
        );
        // force lowers
        assert_eq!(
            checked_set(&k, Some(&cur), mark(1, 0, 3, None), true).unwrap(),
            Some(mark(1, 0, 3, None))
        );
    }

    #[test]
    fn a_new_chain_beyond_the_limit_is_refused_and_known_ones_are_not() {
        let chain = |n: u8| ChainId([n, 0, 0, 0]);
        let on = |n: u8| WatermarkKey {
            chain_id: chain(n),
            ..key(0)
        };
        let chains: HashSet<ChainId> = [chain(1), chain(2)].into_iter().collect();
        assert!(admit_chain(&chains, &on(3), 3).is_ok());
        assert!(matches!(
            admit_chain(&chains, &on(3), 2),
            Err(StoreError::TooManyChains { max: 2, .. })
        ));
        assert!(admit_chain(&chains, &on(1), 2).is_ok());
        assert!(admit_chain(&chains, &on(2), 0).is_ok());
        assert!(admit_chain(&HashSet::new(), &on(1), 0).is_err());
    }

    #[test]
    fn signature_attaches_only_to_its_own_reservation() {
        let k = key(0);
        let r = WatermarkRequest::new(10, 1, [1; 32]);
        assert_eq!(
            attach_signature(&k, Some(&mark(10, 1, 1, None)), &r, "sigA").unwrap(),
            Attach::Record(mark(10, 1, 1, Some("sigA")))
        );
        assert_eq!(
            attach_signature(&k, Some(&mark(10, 1, 1, Some("sigB"))), &r, "sigA").unwrap(),
            Attach::Existing("sigB".into())
        );
        for other in [None, Some(mark(10, 1, 2, None)), Some(mark(11, 0, 1, None))] {
            assert!(matches!(
                attach_signature(&k, other.as_ref(), &r, "sigA"),
                Err(StoreError::ReservationLost { .. })
            ));
        }
        assert!(matches!(
            attach_signature(&k, Some(&mark(10, 1, 1, None)), &r, ""),
            Err(StoreError::InvalidRecord(_))
        ));
    }
}
