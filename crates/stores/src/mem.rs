//! A store that lives in memory only: for tests and the `mem` driver. It keeps the same
//! rules as the durable stores, but everything is lost when the process stops, so it must
//! never back a signer that bakes on a real network.

use crate::rules::{self, Attach};
use async_trait::async_trait;
use parking_lot::Mutex;
use signatory_signer::store::{Recorded, StoreError, WatermarkStore};
use signatory_signer::watermark::{Decision, Watermark, WatermarkKey, WatermarkRequest};
use std::collections::{BTreeMap, HashSet};
use tezos_crypto::ChainId;

#[derive(Debug)]
pub struct MemStore {
    state: Mutex<MemState>,
    max_chains: usize,
}

#[derive(Debug, Default)]
struct MemState {
    marks: BTreeMap<WatermarkKey, Watermark>,
    /// Every chain `marks` holds a record for (never removed, as records are not).
    chains: HashSet<ChainId>,
}

impl MemState {
    fn insert(&mut self, key: WatermarkKey, mark: Watermark) {
        self.chains.insert(key.chain_id);
        self.marks.insert(key, mark);
    }
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self::with_max_chains(rules::DEFAULT_MAX_CHAINS)
    }

    /// A store that refuses requests for a new chain once it holds records for
    /// `max_chains` chains ([`StoreError::TooManyChains`]).
    pub fn with_max_chains(max_chains: usize) -> Self {
        MemStore {
            state: Mutex::new(MemState::default()),
            max_chains,
        }
    }
}

#[async_trait]
impl WatermarkStore for MemStore {
    async fn check_and_advance(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Decision, StoreError> {
        let mut state = self.state.lock();
        // Before anything is recorded: a refused chain leaves no trace.
        rules::admit_chain(&state.chains, &key, self.max_chains)?;
        let (decision, record) = rules::check(state.marks.get(&key), &req);
        if let Some(record) = record {
            state.insert(key, record);
        }
        Ok(decision)
    }

    async fn record_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        let mut state = self.state.lock();
        match rules::attach_signature(&key, state.marks.get(&key), &req, signature_b58)? {
            Attach::Record(record) => {
                state.insert(key, record);
                Ok(Recorded::Ours)
            }
            Attach::Existing(stored) => Ok(Recorded::Existing(stored)),
        }
    }

    async fn get(&self, key: WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        Ok(self.state.lock().marks.get(&key).cloned())
    }

    async fn export(&self) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError> {
        Ok(self
            .state
            .lock()
            .marks
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    async fn set(
        &self,
        key: WatermarkKey,
        watermark: Watermark,
        force: bool,
    ) -> Result<(), StoreError> {
        // An operator's `set` (or import) is not limited to `max_chains`: the limit is
        // against requests, and the operator names each chain on purpose.
        let mut state = self.state.lock();
        if let Some(record) = rules::checked_set(&key, state.marks.get(&key), watermark, force)? {
            state.insert(key, record);
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "mem"
    }
}
