//! The watermark store: where high watermarks live between requests and across restarts.
//!
//! The interface is shaped for local files and for network databases shared by several
//! signer processes alike: every method is async, one call is one atomic step per key, and
//! every failure is an error the caller turns into a refusal (fail closed).
//!
//! A signing request goes through the store twice:
//! 1. [`WatermarkStore::reserve`] reads the key's record, applies
//!    [`decide`](crate::watermark::decide) and, on [`Decision::Advance`], records the
//!    reservation (level, round, hash, no signature). The signer may sign while the record
//!    is being written, but releases nothing before [`WatermarkStore::wait_durable`] said
//!    the record is durable ([`WatermarkStore::check_and_advance`] does both in one call);
//! 2. after the backend signed, [`WatermarkStore::record_signature`] durably attaches the
//!    signature; the signature is released to the client only when that returned `Ok`,
//!    and if the record already held a signature for these bytes (another signer sharing
//!    the store signed them first), that one is released instead.

use crate::watermark::{Decision, Height, Watermark, WatermarkKey, WatermarkRequest};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a store could not answer. Any of these means: do not sign.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the store failed.
    #[error("watermark store I/O failed: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The stored data cannot be trusted; an operator has to look at it.
    #[error("watermark store at {} is corrupt: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// The store was never created at this place.
    #[error("no watermark store at {}: {hint}", path.display())]
    NotInitialised { path: PathBuf, hint: String },
    /// Creating a store where one already exists.
    #[error("a watermark store already exists at {}; refusing to overwrite it", path.display())]
    AlreadyInitialised { path: PathBuf },
    /// Another process holds the store.
    #[error(
        "watermark store at {} is locked by another process; two signers must never share one \
         file store (stop the other signer, or use a shared database store)",
        path.display()
    )]
    Locked { path: PathBuf },
    /// A transient failure (network, database failover): the request may be retried.
    #[error("watermark store temporarily unavailable: {0}")]
    Unavailable(String),
    /// The store's files are no longer the ones it opened (its directory moved or replaced,
    /// its log or lock file removed or replaced while in use): what it writes would not be
    /// what the next open reads. `detail` says what changed and what to do.
    #[error("watermark store at {} changed while in use: {detail}", path.display())]
    Displaced { path: PathBuf, detail: String },
    /// An earlier write failed, or the store's files changed under it, so what the next open
    /// reads is unknown; the store refuses everything until it is reopened (which re-reads
    /// and checks the data).
    #[error("watermark store stopped ({0}); it refuses everything until the signer restarts")]
    Failed(String),
    /// `record_signature` found the record no longer holding the reservation it was called
    /// for, so the signature must not be released.
    #[error(
        "watermark for {key} no longer holds the reservation at {expected} (now {}); \
         the signature is withheld",
        found.map_or_else(|| "nothing".to_string(), |h| h.to_string())
    )]
    ReservationLost {
        key: String,
        expected: Height,
        found: Option<Height>,
    },
    /// An operator `set` without force would lower (or replace at the same height) a record.
    #[error(
        "refusing to set the watermark for {key} to {requested}: the current one is {current} \
         (force is required to lower or replace it)"
    )]
    NotAbove {
        key: String,
        current: Height,
        requested: Height,
    },
    /// A value the store will not record (for example an oversized signature string).
    #[error("refusing to record an invalid watermark value: {0}")]
    InvalidRecord(String),
    /// Records the store had acknowledged (so signatures may rest on them) are gone: its
    /// log is shorter than, or damaged before, the length it recorded as acknowledged.
    /// Starting on it would let a key sign again at heights it already signed.
    #[error(
        "watermark store at {} lost acknowledged watermarks: {detail}. Signatures may have been \
         released at heights it no longer records, so it is not opened. Restore the whole \
         store directory from a backup taken after the signer stopped, or move it aside, \
         create a new store and fence every key at or above the last level and round it \
         signed (`signatory watermark import --from …` from the baker's or another signer's \
         watermarks, or `signatory watermark set`) before starting the signer",
        path.display()
    )]
    AcknowledgedLost { path: PathBuf, detail: String },
    /// The store directory does not take new files, which the store needs (a compaction
    /// writes a new log and snapshot there).
    #[error(
        "watermark store at {} is not writable ({detail}); the signer must be able to create, \
         sync and remove files in it: fix its permissions, ownership or mount",
        path.display()
    )]
    NotWritable { path: PathBuf, detail: String },
    /// A request names a chain the store holds nothing for, and the store already holds
    /// watermarks for as many chains as it may: nothing was recorded.
    #[error(
        "refusing a request for chain {chain}: the watermark store already holds watermarks \
         for {max} chains, as many as it takes; list the chains each key may sign for in its \
         `allowed_chains` policy"
    )]
    TooManyChains { chain: String, max: usize },
}

impl StoreError {
    /// Wrap an I/O error with what was being done, naming the file.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// Whether retrying the same call later may succeed.
    pub const fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether the store refused the request itself (not a failure of the store): the
    /// client's fault, answered with a 4xx.
    pub const fn is_request_refused(&self) -> bool {
        matches!(self, StoreError::TooManyChains { .. })
    }
}

/// A decision taken by [`WatermarkStore::reserve`], whose record may still be on its way
/// to the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub decision: Decision,
    pub durability: DurabilityTicket,
}

/// What [`WatermarkStore::wait_durable`] waits for; its meaning is the issuing store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurabilityTicket(pub u64);

/// What [`WatermarkStore::record_signature`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The signature given is now the record's: release it.
    Ours,
    /// The record already held a signature for these same bytes (signed first by another
    /// signer sharing the store). Release that one, never the one given: two different
    /// signatures of one block are two different blocks at one height.
    Existing(String),
}

/// One I/O operation of a store on its medium (a commit's write and sync, a compaction),
/// reported for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreIo {
    /// `write` (a commit group, synced) or `compact`.
    pub operation: &'static str,
    pub elapsed: Duration,
    /// Why it failed (`io`, `displaced`, …); `None` when it succeeded.
    pub error: Option<&'static str>,
}

/// Receives a store's I/O operations; the server turns them into metrics. Called on the
/// store's I/O path, so it must be quick and never block.
pub trait StoreIoObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, io: StoreIo);
}

/// A durable home for high watermarks, shared as `Arc<dyn WatermarkStore>`.
///
/// Implementations guarantee that, for one key, no two `check_and_advance` calls can both
/// be allowed to sign different bytes at the same height, including across restarts and,
/// for shared stores, across processes.
#[async_trait]
pub trait WatermarkStore: Send + Sync + std::fmt::Debug {
    /// Read the key's record, decide, and on [`Decision::Advance`] durably record the
    /// reservation (signature `None`) before returning. `ReturnStored` and
    /// `SignAgainSameBytes` are only returned once the record they rest on is durable.
    async fn check_and_advance(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Decision, StoreError>;

    /// [`WatermarkStore::check_and_advance`] in two halves: decide and queue the record
    /// now, return before it is durable. Nothing that rests on the decision (a signature,
    /// a stored signature) may leave the signer before `wait_durable(durability)` returned
    /// `Ok`. The decision already binds later calls for the key: a second reservation at
    /// the same height is refused whether or not the first one reached the disk yet.
    ///
    /// Stores that cannot split the two (the default) are durable when this returns.
    async fn reserve(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Reserved, StoreError> {
        Ok(Reserved {
            decision: self.check_and_advance(key, req).await?,
            durability: DurabilityTicket::default(),
        })
    }

    /// Wait until the record a [`Reserved`] decision rests on is durable.
    async fn wait_durable(&self, durability: DurabilityTicket) -> Result<(), StoreError> {
        let _ = durability;
        Ok(())
    }

    /// Durably attach `signature_b58` to the key's record if it still is the reservation of
    /// `req` (same level, round and hash); otherwise [`StoreError::ReservationLost`]. If a
    /// signature for these same bytes is recorded already, it is kept and returned as
    /// [`Recorded::Existing`]: the caller releases that one.
    async fn record_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError>;

    /// Like [`WatermarkStore::record_signature`], but may return before the record is
    /// durable. Only for signatures the vault reproduces exactly from the same bytes (see
    /// `Vault::signs_deterministically`): the reservation is already durable, so a lost
    /// signature record only means identical bytes are signed again, to the same signature.
    /// A later `ReturnStored` still waits until the record is durable.
    async fn record_reproducible_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        self.record_signature(key, req, signature_b58).await
    }

    /// The key's current record.
    async fn get(&self, key: WatermarkKey) -> Result<Option<Watermark>, StoreError>;

    /// Every record, sorted by key.
    async fn export(&self) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError>;

    /// Operator tool: replace the key's record. Without `force` it only raises a watermark
    /// (or adds a signature to the same record), and refuses with [`StoreError::NotAbove`].
    async fn set(
        &self,
        key: WatermarkKey,
        watermark: Watermark,
        force: bool,
    ) -> Result<(), StoreError>;

    /// Whether the store can take writes now.
    async fn health(&self) -> Result<(), StoreError>;

    /// The driver name (`file`, `mem`, …) for logs and metrics.
    fn name(&self) -> &'static str;

    /// Report I/O operations to `observer` from now on. Stores without a medium of their
    /// own (memory) have nothing to report.
    fn observe_io(&self, observer: Arc<dyn StoreIoObserver>) {
        drop(observer);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_transient() {
        assert!(StoreError::Unavailable("failover".into()).is_transient());
        assert!(!StoreError::Failed("fsync".into()).is_transient());
        assert!(!StoreError::Locked {
            path: PathBuf::from("/x")
        }
        .is_transient());
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = StoreError::NotInitialised {
            path: PathBuf::from("/var/lib/signatory/watermarks"),
            hint: "run `signatory watermark init`".into(),
        };
        assert_eq!(
            e.to_string(),
            "no watermark store at /var/lib/signatory/watermarks: run `signatory watermark init`"
        );
        let e = StoreError::ReservationLost {
            key: "block tz1 on Net".into(),
            expected: Height::new(5, 0),
            found: None,
        };
        assert!(e.to_string().contains("(now nothing)"), "{e}");
    }

    #[test]
    fn only_the_chain_limit_is_the_requests_fault() {
        assert!(StoreError::TooManyChains {
            chain: "NetXdQprcVkpaWU".into(),
            max: 16
        }
        .is_request_refused());
        assert!(!StoreError::Failed("fsync".into()).is_request_refused());
        assert!(!StoreError::AcknowledgedLost {
            path: PathBuf::from("/x"),
            detail: "d".into()
        }
        .is_request_refused());
    }
}
