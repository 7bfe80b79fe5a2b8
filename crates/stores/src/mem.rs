//! A store that lives in memory only: for tests and the `mem` driver. It keeps the same
//! rules as the durable stores, but everything is lost when the process stops, so it must
//! never back a signer that bakes on a real network.

use crate::rules::{self, Attach};
use async_trait::async_trait;
use parking_lot::Mutex;
use signatory_signer::store::{Recorded, StoreError, WatermarkStore};
use signatory_signer::watermark::{Decision, Watermark, WatermarkKey, WatermarkRequest};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct MemStore {
    marks: Mutex<BTreeMap<WatermarkKey, Watermark>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl WatermarkStore for MemStore {
    async fn check_and_advance(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Decision, StoreError> {
        let mut marks = self.marks.lock();
        let (decision, record) = rules::check(marks.get(&key), &req);
        if let Some(record) = record {
            marks.insert(key, record);
        }
        Ok(decision)
    }

    async fn record_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        let mut marks = self.marks.lock();
        match rules::attach_signature(&key, marks.get(&key), &req, signature_b58)? {
            Attach::Record(record) => {
                marks.insert(key, record);
                Ok(Recorded::Ours)
            }
            Attach::Existing(stored) => Ok(Recorded::Existing(stored)),
        }
    }

    async fn get(&self, key: WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        Ok(self.marks.lock().get(&key).cloned())
    }

    async fn export(&self) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError> {
        Ok(self
            .marks
            .lock()
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
        let mut marks = self.marks.lock();
        if let Some(record) = rules::checked_set(&key, marks.get(&key), watermark, force)? {
            marks.insert(key, record);
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
