//! The high-watermark rules: may a consensus request (block, preattestation, attestation) at
//! a given level and round be signed, given what was signed before for the same chain, key
//! and kind? Pure decisions, no I/O; the stores make them durable.
//!
//! The rules are Octez's (`check_mark` in the Octez signer): a stored level above the
//! request, or the same level with a stored round above it, is refused; the same level and
//! round with a different request hash is refused; the same level, round and hash returns the
//! stored signature instead of signing again; anything higher is signed and recorded.
//!
//! One difference comes from reserving *before* signing (Octez records after signing): a
//! record can exist with no signature yet, when the signer stopped or the backend failed
//! between the reservation and the signature. Identical bytes may then be signed again
//! ([`Decision::SignAgainSameBytes`]); signing the same bytes twice is not a double signature,
//! and any other payload at that height stays refused.

use std::fmt;
use tezos_crypto::{blake2b_256, ChainId, PublicKeyHash};
use tezos_encoding::WatermarkKind;

/// What a high watermark is kept for: one chain, one key, one kind of consensus request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatermarkKey {
    pub chain_id: ChainId,
    pub pkh: PublicKeyHash,
    pub kind: WatermarkKind,
}

impl WatermarkKey {
    pub const fn new(chain_id: ChainId, pkh: PublicKeyHash, kind: WatermarkKind) -> Self {
        WatermarkKey {
            chain_id,
            pkh,
            kind,
        }
    }
}

impl fmt::Display for WatermarkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} on {}", self.kind, self.pkh, self.chain_id)
    }
}

/// A (level, round) pair, ordered level first: the height a watermark stands at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Height {
    pub level: i32,
    pub round: i32,
}

impl Height {
    pub const fn new(level: i32, round: i32) -> Self {
        Height { level, round }
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(level {}, round {})", self.level, self.round)
    }
}

/// What is recorded for one [`WatermarkKey`]: the highest request reserved for signing, and
/// its signature once one was produced.
#[derive(Clone, PartialEq, Eq)]
pub struct Watermark {
    pub level: i32,
    pub round: i32,
    /// Blake2b-256 of the full request bytes, magic byte included.
    pub request_hash: [u8; 32],
    /// The base58check signature, attached after signing; `None` while only reserved.
    pub signature: Option<String>,
}

impl Watermark {
    /// The record a request reserves before it is signed.
    pub fn reserved(req: &WatermarkRequest) -> Self {
        Watermark {
            level: req.level,
            round: req.round,
            request_hash: req.request_hash,
            signature: None,
        }
    }

    pub const fn height(&self) -> Height {
        Height::new(self.level, self.round)
    }

    /// Whether this record is the reservation of exactly `req` (same height and bytes).
    pub fn is_for(&self, req: &WatermarkRequest) -> bool {
        self.height() == req.height() && self.request_hash == req.request_hash
    }
}

impl fmt::Debug for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watermark")
            .field("level", &self.level)
            .field("round", &self.round)
            .field("request_hash", &hex::encode(self.request_hash))
            .field("signature", &self.signature)
            .finish()
    }
}

/// The watermark-relevant facts of one signing request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WatermarkRequest {
    pub level: i32,
    pub round: i32,
    /// Blake2b-256 of the full request bytes, magic byte included.
    pub request_hash: [u8; 32],
}

impl WatermarkRequest {
    pub const fn new(level: i32, round: i32, request_hash: [u8; 32]) -> Self {
        WatermarkRequest {
            level,
            round,
            request_hash,
        }
    }

    /// Build the request from the exact bytes the client asked to sign.
    pub fn for_bytes(level: i32, round: i32, request_bytes: &[u8]) -> Self {
        Self::new(level, round, blake2b_256(request_bytes))
    }

    pub const fn height(&self) -> Height {
        Height::new(self.level, self.round)
    }
}

impl fmt::Debug for WatermarkRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatermarkRequest")
            .field("level", &self.level)
            .field("round", &self.round)
            .field("request_hash", &hex::encode(self.request_hash))
            .finish()
    }
}

/// What the rules allow for one request.
///
/// Not `#[non_exhaustive]` on purpose: a new outcome must make every caller decide what it
/// means for signing, rather than fall into a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new height: record the reservation durably, then sign.
    Advance,
    /// These exact bytes were signed at this height already: answer with the stored
    /// signature and never sign again.
    ReturnStored(String),
    /// These exact bytes were reserved at this height but no signature was recorded (the
    /// signer stopped or the backend failed in between): the same bytes may be signed.
    SignAgainSameBytes,
    /// Signing would risk a double signature.
    Refuse(Refusal),
}

impl Decision {
    /// Whether the request may go on to the signing backend.
    pub const fn may_sign(&self) -> bool {
        matches!(self, Decision::Advance | Decision::SignAgainSameBytes)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The request's level is below the recorded level.
    LevelBelow,
    /// Same level, and the request's round is below the recorded round.
    RoundBelow,
    /// Same level and round, but different bytes than the ones recorded.
    DifferentPayload,
}

/// A refused request: the reason, the recorded height and the requested one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub current: Height,
    pub requested: Height,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cur, req) = (self.current, self.requested);
        match self.reason {
            RefusalReason::LevelBelow => {
                write!(f, "level {} is below the high watermark {cur}", req.level)
            }
            RefusalReason::RoundBelow => write!(
                f,
                "level {} round {} is below the high watermark {cur}",
                req.level, req.round
            ),
            RefusalReason::DifferentPayload => write!(
                f,
                "level {} round {} was already signed with different data",
                req.level, req.round
            ),
        }
    }
}

/// Decide whether `req` may be signed given the `current` record for its key.
pub fn decide(current: Option<&Watermark>, req: &WatermarkRequest) -> Decision {
    let Some(current) = current else {
        return Decision::Advance;
    };
    let refuse = |reason| {
        Decision::Refuse(Refusal {
            reason,
            current: current.height(),
            requested: req.height(),
        })
    };
    if req.level < current.level {
        return refuse(RefusalReason::LevelBelow);
    }
    if req.level > current.level {
        return Decision::Advance;
    }
    if req.round < current.round {
        return refuse(RefusalReason::RoundBelow);
    }
    if req.round > current.round {
        return Decision::Advance;
    }
    if req.request_hash != current.request_hash {
        return refuse(RefusalReason::DifferentPayload);
    }
    match &current.signature {
        Some(signature) => Decision::ReturnStored(signature.clone()),
        None => Decision::SignAgainSameBytes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn hash(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn req(level: i32, round: i32, h: u8) -> WatermarkRequest {
        WatermarkRequest::new(level, round, hash(h))
    }

    fn mark(level: i32, round: i32, h: u8, signature: Option<&str>) -> Watermark {
        Watermark {
            level,
            round,
            request_hash: hash(h),
            signature: signature.map(str::to_string),
        }
    }

    fn refusal(reason: RefusalReason, current: (i32, i32), requested: (i32, i32)) -> Decision {
        Decision::Refuse(Refusal {
            reason,
            current: Height::new(current.0, current.1),
            requested: Height::new(requested.0, requested.1),
        })
    }

    #[test]
    fn nothing_recorded_advances() {
        assert_eq!(decide(None, &req(0, 0, 1)), Decision::Advance);
        assert_eq!(decide(None, &req(i32::MIN, 0, 1)), Decision::Advance);
    }

    #[test]
    fn every_case_against_a_signed_record() {
        let stored = mark(10, 2, 7, Some("edsigStored"));
        let cases = [
            // level below, whatever the round and hash
            (
                req(9, 0, 7),
                refusal(RefusalReason::LevelBelow, (10, 2), (9, 0)),
            ),
            (
                req(9, 5, 7),
                refusal(RefusalReason::LevelBelow, (10, 2), (9, 5)),
            ),
            (
                req(9, 2, 8),
                refusal(RefusalReason::LevelBelow, (10, 2), (9, 2)),
            ),
            // same level, round below
            (
                req(10, 1, 7),
                refusal(RefusalReason::RoundBelow, (10, 2), (10, 1)),
            ),
            (
                req(10, 0, 8),
                refusal(RefusalReason::RoundBelow, (10, 2), (10, 0)),
            ),
            // same level and round
            (
                req(10, 2, 8),
                refusal(RefusalReason::DifferentPayload, (10, 2), (10, 2)),
            ),
            (req(10, 2, 7), Decision::ReturnStored("edsigStored".into())),
            // above
            (req(10, 3, 8), Decision::Advance),
            (req(10, 3, 7), Decision::Advance),
            (req(11, 0, 7), Decision::Advance),
            (req(11, 0, 8), Decision::Advance),
        ];
        for (request, expected) in cases {
            assert_eq!(decide(Some(&stored), &request), expected, "{request:?}");
        }
    }

    #[test]
    fn a_reservation_without_signature_allows_only_identical_bytes() {
        let stored = mark(10, 2, 7, None);
        assert_eq!(
            decide(Some(&stored), &req(10, 2, 7)),
            Decision::SignAgainSameBytes
        );
        assert_eq!(
            decide(Some(&stored), &req(10, 2, 8)),
            refusal(RefusalReason::DifferentPayload, (10, 2), (10, 2))
        );
        assert_eq!(
            decide(Some(&stored), &req(10, 1, 7)),
            refusal(RefusalReason::RoundBelow, (10, 2), (10, 1))
        );
        assert_eq!(decide(Some(&stored), &req(10, 3, 8)), Decision::Advance);
    }

    #[test]
    fn extreme_values_compare_without_overflow() {
        let stored = mark(i32::MAX, i32::MAX, 1, None);
        assert_eq!(
            decide(Some(&stored), &req(i32::MAX, i32::MAX - 1, 1)),
            refusal(
                RefusalReason::RoundBelow,
                (i32::MAX, i32::MAX),
                (i32::MAX, i32::MAX - 1)
            )
        );
        let low = mark(i32::MIN, i32::MIN, 1, None);
        assert_eq!(
            decide(Some(&low), &req(i32::MIN, i32::MIN + 1, 2)),
            Decision::Advance
        );
    }

    #[test]
    fn may_sign_only_for_advance_and_identical_bytes() {
        assert!(Decision::Advance.may_sign());
        assert!(Decision::SignAgainSameBytes.may_sign());
        assert!(!Decision::ReturnStored("edsig".into()).may_sign());
        assert!(!refusal(RefusalReason::LevelBelow, (1, 0), (0, 0)).may_sign());
    }

    #[test]
    fn refusal_messages_name_both_heights() {
        let Decision::Refuse(r) = decide(Some(&mark(10, 2, 7, None)), &req(9, 0, 7)) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            r.to_string(),
            "level 9 is below the high watermark (level 10, round 2)"
        );
        let Decision::Refuse(r) = decide(Some(&mark(10, 2, 7, None)), &req(10, 2, 8)) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            r.to_string(),
            "level 10 round 2 was already signed with different data"
        );
    }

    #[test]
    fn for_bytes_hashes_the_whole_request() {
        let a = WatermarkRequest::for_bytes(1, 0, b"\x11abc");
        let b = WatermarkRequest::for_bytes(1, 0, b"\x11abd");
        assert_eq!(a.request_hash, blake2b_256(b"\x11abc"));
        assert_ne!(a.request_hash, b.request_hash);
    }

    /// Run a sequence of requests through the rules the way a signer does: reserve on
    /// Advance, sign (attach a signature) on Advance or SignAgainSameBytes unless the
    /// backend "fails" for that request.
    fn run(requests: &[(i32, i32, u8, bool)]) -> Vec<(WatermarkRequest, Decision)> {
        let mut current: Option<Watermark> = None;
        let mut out = Vec::new();
        for &(level, round, h, backend_fails) in requests {
            let r = req(level, round, h);
            let d = decide(current.as_ref(), &r);
            if d == Decision::Advance {
                current = Some(Watermark::reserved(&r));
            }
            if d.may_sign() && !backend_fails {
                if let Some(c) = current.as_mut() {
                    assert!(c.is_for(&r), "a signable request must match the record");
                    c.signature = Some(format!("sig-{level}-{round}-{h}"));
                }
            }
            out.push((r, d));
        }
        out
    }

    proptest! {
        #[test]
        fn accepted_requests_never_go_backwards(
            requests in proptest::collection::vec((0i32..6, 0i32..4, 0u8..3, any::<bool>()), 0..60)
        ) {
            let mut last_advance: Option<Height> = None;
            let mut highest_accepted: Option<Height> = None;
            for (r, d) in run(&requests) {
                if matches!(d, Decision::Refuse(_)) {
                    continue;
                }
                if let Some(h) = highest_accepted {
                    prop_assert!(r.height() >= h, "{r:?} accepted after {h:?}");
                }
                if d == Decision::Advance {
                    if let Some(prev) = last_advance {
                        prop_assert!(r.height() > prev);
                    }
                    last_advance = Some(r.height());
                }
                highest_accepted = Some(r.height());
            }
        }

        #[test]
        fn at_most_one_payload_per_height(
            requests in proptest::collection::vec((0i32..4, 0i32..3, 0u8..4, any::<bool>()), 0..60)
        ) {
            let mut signed: BTreeMap<Height, BTreeSet<[u8; 32]>> = BTreeMap::new();
            for (r, d) in run(&requests) {
                if !matches!(d, Decision::Refuse(_)) {
                    signed.entry(r.height()).or_default().insert(r.request_hash);
                }
            }
            for (height, hashes) in signed {
                prop_assert_eq!(hashes.len(), 1, "two payloads at {:?}", height);
            }
        }

        #[test]
        fn refusals_carry_both_heights_and_a_matching_reason(
            stored in (any::<i32>(), any::<i32>(), 0u8..2),
            request in (any::<i32>(), any::<i32>(), 0u8..2),
        ) {
            let current = mark(stored.0, stored.1, stored.2, None);
            let r = req(request.0, request.1, request.2);
            match decide(Some(&current), &r) {
                Decision::Refuse(refusal) => {
                    prop_assert_eq!(refusal.current, current.height());
                    prop_assert_eq!(refusal.requested, r.height());
                    let expected = if r.level < current.level {
                        RefusalReason::LevelBelow
                    } else if r.height() < current.height() {
                        RefusalReason::RoundBelow
                    } else {
                        RefusalReason::DifferentPayload
                    };
                    prop_assert_eq!(refusal.reason, expected);
                    prop_assert!(r.height() < current.height() || r.request_hash != current.request_hash);
                }
                Decision::Advance => prop_assert!(r.height() > current.height()),
                Decision::SignAgainSameBytes => prop_assert!(current.is_for(&r)),
                Decision::ReturnStored(_) => prop_assert!(false, "nothing was signed"),
            }
        }
    }
}
