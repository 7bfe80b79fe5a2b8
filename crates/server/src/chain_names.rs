//! Chain ids as the base58 text that metrics labels and log lines carry, remembered.
//!
//! A signer sees one or two chains, yet every signing request names its chain in a
//! metric label and in its log line; base58check costs two SHA-256 rounds and a
//! base conversion each time. Requests choose the chain id, so only the first
//! [`REMEMBERED`] are kept: a flood of made-up chains costs an encoding each, not memory.

use std::sync::{Arc, PoisonError, RwLock};
use tezos_crypto::ChainId;

const REMEMBERED: usize = 16;

#[derive(Debug, Default)]
pub struct ChainNames {
    names: RwLock<Vec<(ChainId, Arc<str>)>>,
}

impl ChainNames {
    /// `Net…`, as `ChainId::to_b58check` writes it.
    pub fn name(&self, chain: &ChainId) -> Arc<str> {
        // A panic elsewhere cannot leave this list wrong: entries are only ever pushed whole.
        let known = self.names.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, name)) = known.iter().find(|(c, _)| c == chain) {
            return Arc::clone(name);
        }
        drop(known);
        let name: Arc<str> = Arc::from(chain.to_b58check());
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        if names.len() < REMEMBERED && !names.iter().any(|(c, _)| c == chain) {
            names.push((*chain, Arc::clone(&name)));
        }
        name
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_base58_of_the_chain_id_whether_remembered_or_not() {
        let names = ChainNames::default();
        for i in 0..=u8::try_from(REMEMBERED + 4).unwrap_or(u8::MAX) {
            let chain = ChainId([i, 0x7a, 0x06, 0xa7]);
            let expected = chain.to_b58check();
            // Asked twice: the second answer comes from the list while there is room.
            assert_eq!(&*names.name(&chain), expected);
            assert_eq!(&*names.name(&chain), expected);
        }
        assert_eq!(names.remembered(), REMEMBERED);
    }

    #[test]
    fn the_main_chain_is_named_as_octez_names_it() {
        let names = ChainNames::default();
        let mainnet = ChainId([0x7a, 0x06, 0xa7, 0x70]);
        assert_eq!(&*names.name(&mainnet), "NetXdQprcVkpaWU");
    }
}
