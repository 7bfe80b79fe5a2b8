//! Verify-before-release, shared between concurrent requests.
//!
//! Every signature is checked against its key before it leaves. Under load, requests reach
//! that check in bursts, and Ed25519 and BLS signatures checked together cost about half of
//! what they cost alone (`tezos_crypto::verify_batch`). So a
//! request does not verify on its own: it queues its signature, and the request that found
//! the queue empty leads. The leader yields once, which lets every request already runnable
//! sign and join the queue, then checks the whole queue as one batch and hands each request
//! its answer. A lone request pays one yield.
//!
//! A failed batch is checked again one signature at a time, so a bad signature fails only
//! its own request. A leader that is dropped before it checks (its task cancelled) drops
//! the queued requests' answer channels, and each of them then checks its own signature.

use std::sync::{Mutex, MutexGuard, PoisonError};
use tezos_crypto::{verify_batch, BatchItem, CryptoError, PublicKey, Signature, SigningVersion};
use tokio::sync::oneshot;

/// One queued check, owned so that the leader can run it for the request that queued it.
struct Job {
    key: PublicKey,
    msg: Vec<u8>,
    signature: Signature,
    version: SigningVersion,
    answer: oneshot::Sender<Result<(), CryptoError>>,
}

/// One queue per curve, so that a tz1 request never waits for a batch of BLS pairings.
#[derive(Default)]
pub struct SignatureChecker {
    ed25519: Queue,
    bls: Queue,
}

#[derive(Default)]
struct Queue(Mutex<Vec<Job>>);

impl std::fmt::Debug for SignatureChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureChecker").finish_non_exhaustive()
    }
}

impl SignatureChecker {
    /// Check `signature` by `key` over `msg`, batched with concurrent checks when that is
    /// cheaper (Ed25519, BLS), alone otherwise.
    pub async fn verify(
        &self,
        key: &PublicKey,
        msg: &[u8],
        signature: &Signature,
        version: SigningVersion,
    ) -> Result<(), CryptoError> {
        let queue = match key {
            PublicKey::Ed25519(_) => &self.ed25519,
            PublicKey::Bls(_) => &self.bls,
            _ => return key.verify(msg, signature, version),
        };
        let (answer, answered) = oneshot::channel();
        let leads = {
            let mut queue = queue.lock();
            queue.push(Job {
                key: key.clone(),
                msg: msg.to_vec(),
                signature: *signature,
                version,
                answer,
            });
            queue.len() == 1
        };
        if leads {
            let mut leader = Leader {
                queue,
                checked: false,
            };
            tokio::task::yield_now().await;
            let jobs = std::mem::take(&mut *queue.lock());
            leader.checked = true;
            settle(jobs);
        }
        match answered.await {
            Ok(result) => result,
            // The leader went away without checking: check alone.
            Err(_) => key.verify(msg, signature, version),
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Vec<Job>> {
        // The queue holds no invariant a panicking holder could break.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// While a leader waits for its batch to fill, the queue is its to check; if it is dropped
/// first, the queued requests are told to check for themselves.
struct Leader<'a> {
    queue: &'a Queue,
    checked: bool,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.checked {
            drop(std::mem::take(&mut *self.queue.lock()));
        }
    }
}

fn settle(jobs: Vec<Job>) {
    let items: Vec<BatchItem<'_>> = jobs
        .iter()
        .map(|j| BatchItem {
            key: &j.key,
            msg: &j.msg,
            signature: &j.signature,
            version: j.version,
        })
        .collect();
    let all_valid = verify_batch(&items).is_ok();
    drop(items);
    for job in jobs {
        let result = if all_valid {
            Ok(())
        } else {
            job.key.verify(&job.msg, &job.signature, job.version)
        };
        // A request that went away no longer needs its answer.
        let _ = job.answer.send(result);
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tezos_crypto::{Curve, SecretKey};

    fn signed(curve: Curve, i: u8) -> (PublicKey, Vec<u8>, Signature) {
        let sk = SecretKey::generate(curve);
        let msg = vec![0x13, i, 1, 2, 3];
        let sig = sk.sign(&msg, SigningVersion::V3).unwrap();
        (sk.public_key(), msg, sig)
    }

    /// The same signature with one bit of its second half flipped.
    fn corrupt(sig: &Signature) -> Signature {
        match *sig {
            Signature::Ed25519(mut s) => {
                s[50] ^= 0x10;
                Signature::Ed25519(s)
            }
            Signature::Bls(mut s) => {
                s[80] ^= 0x10;
                Signature::Bls(s)
            }
            _ => panic!("not Ed25519 or BLS"),
        }
    }

    /// Many requests at once, every fifth with a bad signature: each gets its own verdict,
    /// whichever batch it landed in.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_each_get_their_own_verdict() {
        let checker = Arc::new(SignatureChecker::default());
        let mut tasks = Vec::new();
        for i in 0..200u8 {
            let checker = checker.clone();
            tasks.push(tokio::spawn(async move {
                let curve = match i % 7 {
                    0 => Curve::Secp256k1,
                    3 => Curve::Bls12_381,
                    _ => Curve::Ed25519,
                };
                let (key, msg, sig) = signed(curve, i);
                let bad = i % 5 == 0 && curve != Curve::Secp256k1;
                let sig = if bad { corrupt(&sig) } else { sig };
                let verdict = checker.verify(&key, &msg, &sig, SigningVersion::V3).await;
                (bad, verdict.is_ok())
            }));
        }
        for task in tasks {
            let (bad, ok) = task.await.unwrap();
            assert_eq!(ok, !bad);
        }
        assert!(checker.ed25519.lock().is_empty() && checker.bls.lock().is_empty());
    }

    /// Requests that queue behind a leader are checked in one batch with it.
    #[tokio::test(flavor = "current_thread")]
    async fn requests_ready_together_share_a_batch() {
        let checker = Arc::new(SignatureChecker::default());
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let checker = checker.clone();
            tasks.push(tokio::spawn(async move {
                let (key, msg, sig) = signed(Curve::Ed25519, i);
                checker.verify(&key, &msg, &sig, SigningVersion::V3).await
            }));
        }
        // Runs after the eight have queued and before the leader, which yielded, is back.
        let observer = {
            let checker = checker.clone();
            tokio::spawn(async move { checker.ed25519.lock().len() })
        };
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(observer.await.unwrap(), 8);
        assert!(checker.ed25519.lock().is_empty());
    }

    /// Ed25519 and BLS checks queue apart: each curve has its own leader and batch.
    #[tokio::test(flavor = "current_thread")]
    async fn each_curve_has_its_own_queue() {
        let checker = SignatureChecker::default();
        let (k1, m1, s1) = signed(Curve::Ed25519, 1);
        let (k4, m4, s4) = signed(Curve::Bls12_381, 4);
        let mut tz1 = Box::pin(checker.verify(&k1, &m1, &s1, SigningVersion::V3));
        let mut tz4 = Box::pin(checker.verify(&k4, &m4, &s4, SigningVersion::V3));
        assert!(futures_poll_once(tz1.as_mut()).await.is_none());
        assert!(futures_poll_once(tz4.as_mut()).await.is_none());
        assert_eq!(checker.ed25519.lock().len(), 1);
        assert_eq!(checker.bls.lock().len(), 1);
        tz1.await.unwrap();
        tz4.await.unwrap();
    }

    /// A leader cancelled while waiting for its batch: the others still get verdicts.
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_leader_leaves_no_request_waiting() {
        let checker = Arc::new(SignatureChecker::default());
        let (key, msg, sig) = signed(Curve::Ed25519, 1);
        let mut leader = Box::pin(checker.verify(&key, &msg, &sig, SigningVersion::V3));
        assert!(futures_poll_once(leader.as_mut()).await.is_none());
        let (k2, m2, s2) = signed(Curve::Ed25519, 2);
        let bad = corrupt(&s2);
        let follower_ok = checker.verify(&k2, &m2, &s2, SigningVersion::V3);
        let follower_bad = checker.verify(&k2, &m2, &bad, SigningVersion::V3);
        tokio::pin!(follower_ok);
        tokio::pin!(follower_bad);
        assert!(futures_poll_once(follower_ok.as_mut()).await.is_none());
        assert!(futures_poll_once(follower_bad.as_mut()).await.is_none());
        assert_eq!(checker.ed25519.lock().len(), 3);
        // Cancel the leader before it checks.
        drop(leader);
        assert!(checker.ed25519.lock().is_empty());
        follower_ok.await.unwrap();
        assert!(follower_bad.await.is_err());
    }

    /// Poll a future once; `None` if it is pending.
    async fn futures_poll_once<F: std::future::Future + Unpin>(fut: F) -> Option<F::Output> {
        let mut fut = fut;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
